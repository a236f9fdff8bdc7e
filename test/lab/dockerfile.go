package lab

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
)

// DockerfileStage is one stage of a Dockerfile as far as the lab's image
// builder models it.
type DockerfileStage struct {
	Name, From string
	// Copies maps a destination to its source ("--from=STAGE SRC" for a
	// copy from another stage).
	Copies     map[string]string
	User       string
	Entrypoint []string
	Cmd        []string
	WorkDir    string
	// Runs are the RUN lines, joined across continuations.
	Runs []string
	// Other lists instructions the builder does not model (ENV, EXPOSE,
	// VOLUME, CMD, ...): each is a disagreement until the builder does.
	Other []string
}

// ParseDockerfile reads the stages of a Dockerfile (comments dropped,
// continuations joined, ARG and LABEL ignored: they change no runtime
// contract).
func ParseDockerfile(text string) ([]DockerfileStage, error) {
	var lines []string
	var cur strings.Builder
	for _, raw := range strings.Split(text, "\n") {
		t := strings.TrimSpace(raw)
		if strings.HasPrefix(t, "#") || (t == "" && cur.Len() == 0) {
			continue
		}
		if strings.HasSuffix(t, "\\") {
			cur.WriteString(strings.TrimSuffix(t, "\\") + " ")
			continue
		}
		cur.WriteString(t)
		if s := strings.TrimSpace(cur.String()); s != "" {
			lines = append(lines, s)
		}
		cur.Reset()
	}
	var stages []DockerfileStage
	for _, line := range lines {
		instr, rest, _ := strings.Cut(line, " ")
		instr = strings.ToUpper(instr)
		rest = strings.TrimSpace(rest)
		if instr == "FROM" {
			f := strings.Fields(rest)
			st := DockerfileStage{From: f[0], Copies: map[string]string{}}
			if len(f) == 3 && strings.EqualFold(f[1], "AS") {
				st.Name = f[2]
			}
			stages = append(stages, st)
			continue
		}
		if len(stages) == 0 {
			if instr == "ARG" {
				continue
			}
			return nil, fmt.Errorf("dockerfile: %s before FROM", instr)
		}
		st := &stages[len(stages)-1]
		switch instr {
		case "COPY":
			f := strings.Fields(rest)
			from := ""
			if len(f) > 0 && strings.HasPrefix(f[0], "--from=") {
				from, f = f[0]+" ", f[1:]
			}
			if len(f) < 2 {
				return nil, fmt.Errorf("dockerfile: COPY %s: want sources and a destination", rest)
			}
			st.Copies[f[len(f)-1]] = from + strings.Join(f[:len(f)-1], " ")
		case "USER":
			st.User = rest
		case "WORKDIR":
			st.WorkDir = rest
		case "ENTRYPOINT":
			if err := json.Unmarshal([]byte(rest), &st.Entrypoint); err != nil {
				return nil, fmt.Errorf("dockerfile: ENTRYPOINT %s: want the exec (JSON) form: %w", rest, err)
			}
		case "CMD":
			if err := json.Unmarshal([]byte(rest), &st.Cmd); err != nil {
				return nil, fmt.Errorf("dockerfile: CMD %s: want the exec (JSON) form: %w", rest, err)
			}
		case "RUN":
			st.Runs = append(st.Runs, rest)
		case "ARG", "LABEL":
		default:
			st.Other = append(st.Other, instr+" "+rest)
		}
	}
	return stages, nil
}

func stageNamed(stages []DockerfileStage, name string) (DockerfileStage, bool) {
	for _, s := range stages {
		if s.Name == name {
			return s, true
		}
	}
	return DockerfileStage{}, false
}

// aptInstalled returns the packages a RUN line installs with apt-get.
func aptInstalled(run string) []string {
	var out []string
	for _, cmd := range strings.Split(run, "&&") {
		f := strings.Fields(cmd)
		i := slices.Index(f, "install")
		if len(f) < 2 || f[0] != "apt-get" || i < 0 {
			continue
		}
		for _, a := range f[i+1:] {
			if !strings.HasPrefix(a, "-") {
				out = append(out, a)
			}
		}
	}
	slices.Sort(out)
	return out
}

// DockerfileDisagreements compares the Dockerfile's lbstack and
// must-gather stages with the images the lab builds (LbstackImageSpec,
// MustGatherImageSpec) and the way the lab builds the binary (static,
// trimmed, stripped), and lists every difference.
func DockerfileDisagreements(text string) []string {
	stages, err := ParseDockerfile(text)
	if err != nil {
		return []string{err.Error()}
	}
	var out []string
	diff := func(stage, what string, df, lab any) {
		if fmt.Sprint(df) != fmt.Sprint(lab) {
			out = append(out, fmt.Sprintf("stage %s: %s: Dockerfile %v, lab image %v", stage, what, df, lab))
		}
	}
	build, ok := stageNamed(stages, "build")
	if !ok {
		out = append(out, "no build stage")
	} else {
		all := strings.Join(build.Runs, " ")
		for _, want := range []string{"CGO_ENABLED=0", "-trimpath", "-s -w", "-o /out/lbstack"} {
			if !strings.Contains(all, want) {
				out = append(out, fmt.Sprintf("stage build: the lab builds lbstack with %s (make image-binaries), the Dockerfile does not", want))
			}
		}
	}
	lb, ok := stageNamed(stages, "lbstack")
	if !ok {
		out = append(out, "no lbstack stage")
	} else {
		spec := LbstackImageSpec
		diff("lbstack", "base image", lb.From, spec.Base)
		diff("lbstack", "files", lb.Copies, map[string]string{spec.Binary: "--from=build /out/lbstack"})
		diff("lbstack", "user", lb.User, spec.User)
		diff("lbstack", "entrypoint", lb.Entrypoint, spec.Entrypoint)
		diff("lbstack", "command", lb.Cmd, []string(nil))
		diff("lbstack", "working directory", lb.WorkDir, "")
		diff("lbstack", "RUN", lb.Runs, []string(nil))
		diff("lbstack", "other instructions", lb.Other, []string(nil))
	}
	mg, ok := stageNamed(stages, "must-gather")
	if !ok {
		out = append(out, "no must-gather stage")
	} else {
		spec := MustGatherImageSpec
		diff("must-gather", "base image", mg.From, spec.Base)
		var pkgs []string
		for _, r := range mg.Runs {
			pkgs = append(pkgs, aptInstalled(r)...)
		}
		want := slices.Clone(spec.Packages)
		slices.Sort(want)
		diff("must-gather", "packages", pkgs, want)
		files := map[string]string{}
		for dest, src := range spec.Files {
			if src == "/out/lbstack" {
				src = "--from=build " + src
			}
			files[dest] = src
		}
		diff("must-gather", "files", mg.Copies, files)
		diff("must-gather", "user", mg.User, "")
		diff("must-gather", "entrypoint", mg.Entrypoint, spec.Entrypoint)
		diff("must-gather", "command", mg.Cmd, []string(nil))
		diff("must-gather", "working directory", mg.WorkDir, "")
		diff("must-gather", "other instructions", mg.Other, []string(nil))
	}
	fr, ok := stageNamed(stages, "frr")
	if !ok {
		out = append(out, "no frr stage")
	} else {
		spec := FRRImageSpec
		diff("frr", "base image", fr.From, spec.Base)
		var pkgs []string
		for _, r := range fr.Runs {
			pkgs = append(pkgs, aptInstalled(r)...)
		}
		want := slices.Clone(spec.Packages)
		slices.Sort(want)
		diff("frr", "packages", pkgs, want)
		// The users, groups and links the lab writes, made by the stage's
		// RUN lines.
		all := strings.Join(fr.Runs, " && ")
		for _, cmd := range []string{
			fmt.Sprintf("groupadd -r -g %d frr", spec.GID),
			fmt.Sprintf("groupadd -r -g %d frrvty", spec.VtyGID),
			fmt.Sprintf("useradd -r -u %d -g frr -G frrvty", spec.UID),
		} {
			if !strings.Contains(all, cmd) {
				out = append(out, fmt.Sprintf("stage frr: the lab's image has what %q makes, the Dockerfile does not run it", cmd))
			}
		}
		for p, target := range spec.Links {
			if cmd := "ln -s " + target + " " + p; !strings.Contains(all, cmd) {
				out = append(out, fmt.Sprintf("stage frr: the lab's image has what %q makes, the Dockerfile does not run it", cmd))
			}
		}
		diff("frr", "files", fr.Copies, spec.Files)
		diff("frr", "user", fr.User, "")
		diff("frr", "entrypoint", fr.Entrypoint, spec.Entrypoint)
		diff("frr", "command", fr.Cmd, spec.Cmd)
		diff("frr", "working directory", fr.WorkDir, "")
		diff("frr", "other instructions", fr.Other, []string(nil))
	}
	return out
}
