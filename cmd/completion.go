package cmd

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/rfenv/rfenv/cmd/config"
	"github.com/rfenv/rfenv/pkg/pool"
	"github.com/rfenv/rfenv/pkg/state"
)

// completionTimeout bounds what a completion may wait for: the state file, or a running
// environment's /methods. A shell waiting on a Tab key must not hang.
const completionTimeout = 3 * time.Second

// Values of flags that take one of a fixed set.
var (
	balancerValues = []string{"random\tpick a healthy replica at random", "round_robin\ttake turns, shared by every rfenv process", "least_busy\tthe replica with the fewest calls in flight"}
	typeValues     = []string{"function\tan Actor class or functions in env.py, served by rfenv", "http\ta FastAPI or Starlette app in env.py, served as is"}
	progressValues = []string{"auto", "plain", "quiet", "rawjson"}
)

// addCompletions registers dynamic shell completion on the command tree: environment names from the
// state file, method names and parameter names from a running environment, and the values of
// enumerated flags. It also sets up the `completion` command so that it is documented like the others.
func addCompletions(root *cobra.Command, f *Factory) {
	for _, c := range root.Commands() {
		switch c.Name() {
		case "call":
			c.ValidArgsFunction = func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
				switch len(args) {
				case 0:
					return completeEnvNames(cmd, f, args, toComplete)
				case 1:
					return completeMethods(cmd, f, args[0], toComplete)
				}
				return nil, cobra.ShellCompDirectiveNoFileComp
			}
			for _, fl := range []string{"arg", "arg-str"} {
				registerFlagCompletion(c, fl, func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
					return completeParams(cmd, f, args, toComplete)
				})
			}
			registerFlagCompletion(c, "lb", fixedValues(balancerValues))
		case "methods", "stats", "logs":
			c.ValidArgsFunction = func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
				if len(args) > 0 {
					return nil, cobra.ShellCompDirectiveNoFileComp
				}
				return completeEnvNames(cmd, f, args, toComplete)
			}
			if c.Name() == "logs" {
				registerFlagCompletion(c, "replica", func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
					return completeReplicas(cmd, f, args, toComplete)
				})
				registerFlagCompletion(c, "tail", cobra.FixedCompletions([]cobra.Completion{"all", "0", "10", "100"}, cobra.ShellCompDirectiveNoFileComp))
			}
		case "down":
			// Several names: suggest those not given yet.
			c.ValidArgsFunction = func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
				return completeEnvNames(cmd, f, args, toComplete)
			}
			registerFlagCompletion(c, "host", func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
				return completeHosts(cmd, f, toComplete)
			})
		case "up":
			registerFlagCompletion(c, "build", dirArg)
			registerFlagCompletion(c, "lb", fixedValues(balancerValues))
			registerFlagCompletion(c, "type", fixedValues(typeValues))
			registerFlagCompletion(c, "host", func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
				return completeHosts(cmd, f, toComplete)
			})
		case "build":
			c.ValidArgsFunction = dirArg
			registerFlagCompletion(c, "type", fixedValues(typeValues))
			registerFlagCompletion(c, "progress", fixedValues(progressValues))
			registerFlagCompletion(c, "host", func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
				return completeHosts(cmd, f, toComplete)
			})
		case "init":
			c.ValidArgsFunction = dirArg
			registerFlagCompletion(c, "type", fixedValues(typeValues))
		case "dev":
			c.ValidArgsFunction = dirArg
			registerFlagCompletion(c, "progress", fixedValues(progressValues))
			registerFlagCompletion(c, "lb", fixedValues(balancerValues))
		case "validate":
			c.ValidArgsFunction = func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
				switch len(args) {
				case 0:
					return completeEnvNames(cmd, f, args, toComplete)
				case 1:
					return completeMethods(cmd, f, args[0], toComplete)
				}
				return nil, cobra.ShellCompDirectiveNoFileComp
			}
			for _, fl := range []string{"arg", "arg-str", "vary"} {
				registerFlagCompletion(c, fl, func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
					return completeParams(cmd, f, args, toComplete)
				})
			}
		}
	}
	documentCompletionCmd(root)
}

// registerFlagCompletion registers fn for c's flag; a flag that does not exist is a bug of this
// file, caught by the tests.
func registerFlagCompletion(c *cobra.Command, flag string, fn cobra.CompletionFunc) {
	if err := c.RegisterFlagCompletionFunc(flag, fn); err != nil {
		panic(fmt.Sprintf("completion for %s --%s: %v", c.CommandPath(), flag, err))
	}
}

// dirArg completes a single directory argument.
func dirArg(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
	if len(args) > 0 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	return nil, cobra.ShellCompDirectiveFilterDirs
}

// fixedValues completes one of values ("value\tdescription"), matching the prefix typed.
func fixedValues(values []string) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		var out []cobra.Completion
		for _, v := range values {
			if strings.HasPrefix(v, toComplete) {
				out = append(out, v)
			}
		}
		return out, cobra.ShellCompDirectiveNoFileComp
	}
}

func completionContext(cmd *cobra.Command) (context.Context, context.CancelFunc) {
	ctx := cmd.Context()
	if ctx == nil {
		ctx = context.Background()
	}
	return context.WithTimeout(ctx, completionTimeout)
}

// completionEnvs reads the environments from the state file; no Docker call is made.
func completionEnvs(cmd *cobra.Command, f *Factory) []*state.Environment {
	ctx, cancel := completionContext(cmd)
	defer cancel()
	client, err := f.Client()
	if err != nil {
		cobra.CompDebugln("rfenv: "+err.Error(), false)
		return nil
	}
	recs, err := client.List(ctx)
	if err != nil {
		cobra.CompDebugln("rfenv: "+err.Error(), false)
		return nil
	}
	return recs
}

// completeEnvNames suggests the environments in the state file that are not among args.
func completeEnvNames(cmd *cobra.Command, f *Factory, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
	var out []cobra.Completion
	for _, rec := range completionEnvs(cmd, f) {
		if !strings.HasPrefix(rec.Name, toComplete) || slices.Contains(args, rec.Name) {
			continue
		}
		desc := fmt.Sprintf("%s, %d replica(s)", rec.Type, len(rec.Instances))
		if rec.Image != "" {
			desc += " of " + rec.Image
		}
		out = append(out, cobra.CompletionWithDesc(rec.Name, desc))
	}
	return out, cobra.ShellCompDirectiveNoFileComp
}

// completionMethods asks a running environment for its methods.
func completionMethods(cmd *cobra.Command, f *Factory, name string) []pool.Method {
	ctx, cancel := completionContext(cmd)
	defer cancel()
	client, err := f.Client()
	if err != nil {
		return nil
	}
	env, err := client.Get(ctx, name)
	if err != nil {
		cobra.CompDebugln("rfenv: "+err.Error(), false)
		return nil
	}
	defer env.Release()
	ms, err := env.Methods(ctx)
	if err != nil {
		cobra.CompDebugln("rfenv: "+err.Error(), false)
		return nil
	}
	return ms
}

// completeMethods suggests the methods of environment name.
func completeMethods(cmd *cobra.Command, f *Factory, name, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
	var out []cobra.Completion
	for _, m := range completionMethods(cmd, f, name) {
		if !strings.HasPrefix(m.Name, toComplete) {
			continue
		}
		desc := m.Signature
		if m.Doc != "" {
			desc += "  " + m.Doc
		}
		out = append(out, cobra.CompletionWithDesc(m.Name, desc))
	}
	return out, cobra.ShellCompDirectiveNoFileComp
}

// completeParams suggests "k=" for the keyword parameters of the method named on the command line
// that no --arg or --arg-str gives yet.
func completeParams(cmd *cobra.Command, f *Factory, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
	if len(args) < 2 || strings.Contains(toComplete, "=") {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	given := map[string]bool{}
	for _, fl := range []string{"arg", "arg-str"} {
		vals, _ := cmd.Flags().GetStringArray(fl)
		for _, kv := range vals {
			k, _, _ := strings.Cut(kv, "=")
			given[k] = true
		}
	}
	var out []cobra.Completion
	for _, m := range completionMethods(cmd, f, args[0]) {
		if m.Name != args[1] {
			continue
		}
		for _, p := range m.Parameters {
			if p.Kind == "VAR_POSITIONAL" || p.Kind == "VAR_KEYWORD" || p.Kind == "POSITIONAL_ONLY" {
				continue
			}
			if given[p.Name] || !strings.HasPrefix(p.Name, toComplete) {
				continue
			}
			var desc []string
			if p.Annotation != nil {
				desc = append(desc, *p.Annotation)
			}
			if p.Default != nil {
				desc = append(desc, "default "+*p.Default)
			} else if !p.HasDefault {
				desc = append(desc, "required")
			}
			out = append(out, cobra.CompletionWithDesc(p.Name+"=", strings.Join(desc, ", ")))
		}
	}
	if len(out) == 0 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	return out, cobra.ShellCompDirectiveNoSpace | cobra.ShellCompDirectiveNoFileComp
}

// completeReplicas suggests the replica indices of the environment named on the command line.
func completeReplicas(cmd *cobra.Command, f *Factory, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
	if len(args) == 0 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	var out []cobra.Completion
	for _, rec := range completionEnvs(cmd, f) {
		if rec.Name != args[0] {
			continue
		}
		for _, in := range rec.Instances {
			idx := strconv.Itoa(in.Index)
			if strings.HasPrefix(idx, toComplete) {
				out = append(out, cobra.CompletionWithDesc(idx, in.ContainerName+" on "+in.Host))
			}
		}
	}
	return out, cobra.ShellCompDirectiveNoFileComp
}

// completeHosts suggests localhost, the configured hosts and those the state file records.
func completeHosts(cmd *cobra.Command, f *Factory, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
	seen := map[string]bool{}
	var out []cobra.Completion
	add := func(h string) {
		if h != "" && !seen[h] && strings.HasPrefix(h, toComplete) {
			seen[h] = true
			out = append(out, h)
		}
	}
	add("localhost")
	if f.Config != nil {
		for _, h := range f.Config.Strings(config.KeyHosts) {
			add(h)
		}
	}
	for _, rec := range completionEnvs(cmd, f) {
		for _, h := range rec.Hosts {
			add(h)
		}
	}
	return out, cobra.ShellCompDirectiveNoFileComp
}

// documentCompletionCmd creates cobra's `completion` command now, rather than when the command line
// runs, and gives it and its subcommands examples like every other command. The command writes to
// root's output as set when it is created: call this after root.SetOut.
func documentCompletionCmd(root *cobra.Command) {
	root.InitDefaultCompletionCmd()
	for _, c := range root.Commands() {
		if c.Name() != "completion" {
			continue
		}
		c.Long += `
Completion is dynamic: environment names come from the state file, method names and --arg parameter
names from the running environment.`
		c.Example = `  source <(rfenv completion bash)
  rfenv completion zsh > "${fpath[1]}/_rfenv"
  rfenv completion fish > ~/.config/fish/completions/rfenv.fish`
		for _, sub := range c.Commands() {
			switch sub.Name() {
			case "bash":
				sub.Example = "  source <(rfenv completion bash)\n  rfenv completion bash > /etc/bash_completion.d/rfenv"
			case "zsh":
				sub.Example = "  rfenv completion zsh > \"${fpath[1]}/_rfenv\""
			case "fish":
				sub.Example = "  rfenv completion fish > ~/.config/fish/completions/rfenv.fish"
			case "powershell":
				sub.Example = "  rfenv completion powershell | Out-String | Invoke-Expression"
			}
		}
	}
}
