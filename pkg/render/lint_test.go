package render_test

import (
	"io/fs"
	"strings"
	"testing"
	"text/template"
	"text/template/parse"

	"github.com/lbstack/lbstack/bindata"
)

// TestTemplatesQuoteEveryValue keeps a value of the MetalLB spec from ever
// being pasted into YAML as raw text: every action that prints must end in
// `quote` (a JSON string scalar) or print `yaml` output (a marshalled
// structure, possibly indented). A raw `{{ .X }}` would let a newline or a
// `#` in X change the document.
func TestTemplatesQuoteEveryValue(t *testing.T) {
	stub := func(...any) string { return "" }
	funcs := template.FuncMap{"yaml": stub, "indent": stub, "quote": stub, "b64": stub}
	err := fs.WalkDir(bindata.FS, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".yaml") {
			return err
		}
		src, err := fs.ReadFile(bindata.FS, path)
		if err != nil {
			return err
		}
		tmpl, err := template.New(path).Funcs(funcs).Parse(string(src))
		if err != nil {
			t.Errorf("%s: %v", path, err)
			return nil
		}
		for _, tt := range tmpl.Templates() {
			checkPrints(t, path, tt.Tree.Root)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func checkPrints(t *testing.T, file string, n parse.Node) {
	t.Helper()
	switch n := n.(type) {
	case *parse.ListNode:
		if n == nil {
			return
		}
		for _, c := range n.Nodes {
			checkPrints(t, file, c)
		}
	case *parse.IfNode:
		checkPrints(t, file, n.List)
		checkPrints(t, file, n.ElseList)
	case *parse.WithNode:
		checkPrints(t, file, n.List)
		checkPrints(t, file, n.ElseList)
	case *parse.RangeNode:
		checkPrints(t, file, n.List)
		checkPrints(t, file, n.ElseList)
	case *parse.ActionNode:
		if len(n.Pipe.Decl) > 0 {
			return // a variable assignment prints nothing
		}
		cmds := n.Pipe.Cmds
		last := cmds[len(cmds)-1].Args[0]
		first := cmds[0].Args[0]
		ok := isIdent(last, "quote") || (isIdent(first, "yaml") && (len(cmds) == 1 || isIdent(last, "indent")))
		if !ok {
			t.Errorf("%s:%d: %q prints a value without quote or yaml", file, n.Line, n.String())
		}
	}
}

func isIdent(n parse.Node, name string) bool {
	id, ok := n.(*parse.IdentifierNode)
	return ok && id.Ident == name
}
