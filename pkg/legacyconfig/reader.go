package legacyconfig

import (
	"fmt"
	"io"
	"os"
)

// MaxInput bounds what ConvertReader reads: a ConfigMap holds at most
// 1 MiB, so this is generous.
const MaxInput = 8 << 20

// ConvertReader reads the ConfigMap manifest or data.config text from r
// (at most MaxInput bytes) and converts it. name says what r is (a file
// name, "standard input") in errors.
func ConvertReader(r io.Reader, name string, opts Options) (*Result, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxInput+1))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", name, err)
	}
	if len(data) > MaxInput {
		return nil, fmt.Errorf("%s is larger than %d bytes; a ConfigMap holds at most 1 MiB", name, MaxInput)
	}
	res, err := ConvertBytes(data, opts)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return res, nil
}

// WriteWarnings writes r's warnings one a line as YAML comments, so that
// they can share a stream with the objects (standard error, when the
// objects go to standard output).
func (r *Result) WriteWarnings(w io.Writer) error {
	for _, wn := range r.Warnings {
		if _, err := fmt.Fprintf(w, "# warning: %s\n", wn); err != nil {
			return err
		}
	}
	return nil
}

// ConvertFile converts the file at path, or stdin when path is "" or "-";
// reading a terminal, it first tells the user on hint how to end the input.
func ConvertFile(path string, stdin io.Reader, hint io.Writer, opts Options) (*Result, error) {
	if path != "" && path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		defer func() { _ = f.Close() }()
		return ConvertReader(f, path, opts)
	}
	if f, ok := stdin.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			_, _ = fmt.Fprintln(hint, "# reading the ConfigMap from standard input (end with Ctrl-D; see --help for -f)")
		}
	}
	return ConvertReader(stdin, "standard input", opts)
}
