// Command lab brings lbstack's local lab up and down (see docs/lab.md):
//
//	lab up [--nodes N] [--scenario NAME] [--install kustomize|olm]   bring the lab up (or reuse it), install what exists, print the state
//	lab down                              remove every namespace, process and file the lab made
//	lab status                            what runs, and what the user would check
//
// It also runs the lab registry (`lab registry`), which serves the images
// the lab builds to the nodes' containerd, and the reaper that tears a
// test's lab down when the test process exits (`lab reap`); `lab up`
// starts both.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/lbstack/lbstack/test/lab"
)

func main() {
	if err := newRoot().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "lab:", err)
		os.Exit(1)
	}
}

func newRoot() *cobra.Command {
	var root, state string
	resolve := func() (string, string, error) {
		r := root
		if r == "" {
			var err error
			if r, err = lab.RepoRoot(); err != nil {
				return "", "", err
			}
		}
		s := state
		if s == "" {
			s = filepath.Join(r, ".lab")
		}
		return r, s, nil
	}
	cmd := &cobra.Command{
		Use:           "lab",
		Short:         "lbstack's local lab: a real control plane, nodes as network namespaces, an FRR router and a client",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	cmd.PersistentFlags().StringVar(&root, "root", "", "lbstack repository (default: found above the working directory)")
	cmd.PersistentFlags().StringVar(&state, "state", "", "lab state directory (default: ROOT/.lab)")
	cmd.AddCommand(upCmd(resolve), downCmd(resolve), statusCmd(resolve), registryCmd(resolve), dnsCmd(resolve), reapCmd(resolve))
	return cmd
}

type resolver func() (root, state string, err error)

func signalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}

func upCmd(resolve resolver) *cobra.Command {
	var nodes int
	var scenario, install string
	c := &cobra.Command{
		Use:   "up",
		Short: "Bring the lab up (reusing a running one), install what exists of lbstack, apply a scenario, print the state",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			root, state, err := resolve()
			if err != nil {
				return err
			}
			ctx, cancel := signalContext()
			defer cancel()
			start := time.Now()
			l, err := lab.Up(ctx, lab.Options{Root: root, StateDir: state, Nodes: nodes, Scenario: scenario, Out: os.Stdout})
			if err != nil {
				return err
			}
			how := "brought up"
			if l.Reused {
				how = "reused"
			}
			fmt.Printf("lab: %s in %.1fs: %d nodes, router, client; kubeconfig %s\n", how, l.UpTime.Seconds(), l.State.Nodes, l.State.Kubeconfig())
			// A failing install or scenario is reported, and the state is
			// still printed: that is what the user needs to see then.
			var failed []error
			var installed bool
			switch install {
			case "olm":
				err = l.InstallStackWithOLM(ctx, os.Stdout)
				installed = err == nil
			case "kustomize":
				installed, err = l.InstallStack(ctx)
			default:
				return fmt.Errorf("--install %q: want kustomize or olm", install)
			}
			switch {
			case err != nil:
				fmt.Printf("lab: INSTALLING LBSTACK FAILED: %v\n", err)
				failed = append(failed, err)
			case installed && install == "olm":
				fmt.Println("lab: lbstack installed through OLM (docs/olm.md)")
			case installed:
				fmt.Println("lab: lbstack installed (kubectl apply -k config/default, CRDs included)")
			default:
				fmt.Println("lab: lbstack itself is not installed: config/default does not exist yet")
				if err := l.InstallCRDs(ctx); err != nil {
					return err
				}
				fmt.Println("lab: metallb.io CRDs installed (kubectl apply -k config/crd)")
			}
			if err := l.ApplyScenario(ctx, scenario); err != nil {
				fmt.Printf("lab: APPLYING SCENARIO %s FAILED: %v\n", scenario, err)
				failed = append(failed, err)
			} else {
				fmt.Printf("lab: scenario %s applied\n", scenario)
				if missing := l.WaitSettled(ctx, 2*time.Minute); missing != "" {
					fmt.Printf("lab: not settled after 2 minutes: %s\n", missing)
				} else {
					fmt.Printf("lab: settled: every LoadBalancer Service has its address, every router session is up\n")
				}
			}
			if missing := l.NotBuilt(ctx); len(missing) > 0 {
				fmt.Println()
				fmt.Println("NOT BUILT YET:")
				for _, m := range missing {
					fmt.Printf("  - %s: %s\n", m.Part, m.Consequence)
				}
			}
			if err := l.Report(ctx, os.Stdout); err != nil {
				return err
			}
			fmt.Println("\n== traffic: the client, through the router")
			curls := l.CurlServices(ctx)
			if len(curls) == 0 {
				fmt.Println("(no LoadBalancer Service has an address)")
			}
			for _, c := range curls {
				fmt.Println(c)
			}
			if len(failed) > 0 {
				return fmt.Errorf("the lab is up, but: %w", errors.Join(failed...))
			}
			fmt.Printf("\nlab: ready in %.1fs. kubectl: %s --kubeconfig %s ...\n", time.Since(start).Seconds(), l.State.Kubectl(), l.State.Kubeconfig())
			fmt.Printf("lab: router: vtysh --vty_socket %s -c 'show bgp summary'   (docs/lab.md)\n", l.Router.FRR.Dir)
			return nil
		},
	}
	c.Flags().IntVar(&nodes, "nodes", 3, "number of nodes")
	c.Flags().StringVar(&install, "install", "kustomize", "how to install lbstack: kustomize (kubectl apply -k config/default) or olm (OLM, the lab's catalog, a Subscription)")
	c.Flags().StringVar(&scenario, "scenario", lab.DefaultScenario, "scenario (config/samples/scenarios): "+strings.Join(lab.ScenarioNames(), ", "))
	return c
}

func downCmd(resolve resolver) *cobra.Command {
	return &cobra.Command{
		Use:   "down",
		Short: "Remove every namespace, process, mount and file the lab made",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, state, err := resolve()
			if err != nil {
				return err
			}
			if os.Geteuid() != 0 {
				return errors.New("lab down needs root (it deletes network namespaces)")
			}
			start := time.Now()
			if err := lab.Down(context.Background(), state, lab.DownOptions{Out: os.Stdout}); err != nil {
				return err
			}
			fmt.Printf("lab: down in %.1fs\n", time.Since(start).Seconds())
			return nil
		},
	}
}

func statusCmd(resolve resolver) *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "Show whether the lab's components run, and what a user would check",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, state, err := resolve()
			if err != nil {
				return err
			}
			st, err := lab.LoadState(state)
			if err != nil {
				if ns, _ := lab.LabNetns(); len(ns) > 0 {
					return fmt.Errorf("%w; but lab namespaces exist (%s): run `make lab-down`", err, strings.Join(ns, ", "))
				}
				return err
			}
			problems := lab.Problems(st)
			fmt.Printf("lab in %s: %d nodes, scenario %s, up since %s\n", st.Dir, st.Nodes, st.Applied, st.UpSince.Format(time.RFC3339))
			if len(problems) > 0 {
				fmt.Println("PROBLEMS (`make lab` repairs dead components):")
				for _, p := range problems {
					fmt.Println("  -", p)
				}
				return errors.New("the lab is not healthy")
			}
			fmt.Println("all components running")
			l, err := lab.Open(state)
			if err != nil {
				return err
			}
			return l.Report(context.Background(), os.Stdout)
		},
	}
}

func registryCmd(resolve resolver) *cobra.Command {
	return daemonCmd(resolve, "registry", "Serve the lab's images to the nodes (started by `lab up`)", lab.ServeRegistry)
}

func dnsCmd(resolve resolver) *cobra.Command {
	return daemonCmd(resolve, "dns", "Serve the lab's cluster DNS (Service names) to the pods (started by `lab up`)", lab.ServeDNS)
}

// daemonCmd is a hidden command that serves one of the lab's daemons for
// the lab's state directory until it is signalled.
func daemonCmd(resolve resolver, use, short string, serve func(ctx context.Context, stateDir string) error) *cobra.Command {
	return &cobra.Command{
		Use:    use,
		Short:  short,
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, state, err := resolve()
			if err != nil {
				return err
			}
			ctx, cancel := signalContext()
			defer cancel()
			return serve(ctx, state)
		},
	}
}

func reapCmd(resolve resolver) *cobra.Command {
	var pid int
	var start string
	c := &cobra.Command{
		Use:    "reap",
		Short:  "Tear the lab down when the process that owns it exits (started by `lab up` for tests)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, state, err := resolve()
			if err != nil {
				return err
			}
			st, err := strconv.ParseUint(start, 10, 64)
			if err != nil {
				return fmt.Errorf("--start: %w", err)
			}
			// SIGTERM (from `lab down`) ends the wait without a teardown.
			ctx, cancel := signalContext()
			defer cancel()
			return lab.Reap(ctx, state, lab.Proc{Name: "owner", PID: pid, Start: st})
		},
	}
	c.Flags().IntVar(&pid, "pid", 0, "owner PID")
	c.Flags().StringVar(&start, "start", "", "owner start time (/proc/PID/stat field 22)")
	return c
}
