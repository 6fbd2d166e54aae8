package main

import (
	"context"
	"log/slog"

	"github.com/spf13/cobra"

	"github.com/logitlens/logitlens/inference"
	"github.com/logitlens/logitlens/tui/serve"
	"github.com/logitlens/logitlens/weights/hub"
)

// serveOptions are a serve command line, parsed and checked.
type serveOptions struct {
	model    modelFlags
	explorer explorerFlags // how every session starts
	serve    serve.Options
}

// newServeCmd is `logitlens serve`. run replaces the server in tests of the
// flags.
func newServeCmd(a *app, run func(context.Context, *serveOptions) error) *cobra.Command {
	if run == nil {
		run = func(ctx context.Context, o *serveOptions) error { return runServe(ctx, a, o) }
	}
	o := &serveOptions{}
	var pf promptFlags
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Serve the explorer over SSH (public keys only)",
		Long: `Serve the explorer over SSH: one model, loaded once, and one explorer per
SSH session, each with its own prompt and cursor.

Only public keys are accepted: those in --authorized-keys, and certificates
signed by a --trusted-ca key. Both files are re-read when they change. The
host key is created at --host-key on first start. Keep --listen off the
internet; see README, Serving over SSH.`,
		Example: `  logitlens serve -m gpt2-medium --listen 0.0.0.0:2222
  ssh -p 2222 box`,
		Args: noArgs(""),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.model.check(cmd); err != nil {
				return err
			}
			if err := o.explorer.check(); err != nil {
				return err
			}
			prompt, err := pf.read(cmd, cmd.InOrStdin())
			if err != nil {
				return err
			}
			if err := checkExplorerPrompt(prompt); err != nil {
				return err
			}
			o.serve.Session = o.explorer.options()
			o.serve.Session.Prompt = prompt
			// On the command line 0 means never; in serve.Options a
			// negative value does.
			if o.serve.IdleTimeout == 0 {
				o.serve.IdleTimeout = -1
			}
			if o.serve.MaxSession == 0 {
				o.serve.MaxSession = -1
			}
			return run(cmd.Context(), o)
		},
	}
	o.model.register(cmd)
	pf.register(cmd, defaultPrompt, "every session's first prompt")
	o.explorer.register(cmd)
	fs := cmd.Flags()
	fs.StringVar(&o.serve.Listen, "listen", serve.DefaultListen, "host:port to listen on (keep it off the internet)")
	fs.StringVar(&o.serve.AuthorizedKeys, "authorized-keys", "~/.ssh/authorized_keys", `OpenSSH authorized_keys file of the keys that may connect ("" to use only --trusted-ca)`)
	fs.StringVar(&o.serve.TrustedCA, "trusted-ca", "", "file of trusted user CA public keys, for SSH certificates")
	fs.StringVar(&o.serve.HostKey, "host-key", serve.DefaultHostKeyPath(), "host private key; an ed25519 key is created there (0600) when missing")
	fs.DurationVar(&o.serve.IdleTimeout, "idle-timeout", serve.DefaultIdleTimeout, "end a session after this long without input; 0 for never")
	fs.DurationVar(&o.serve.MaxSession, "max-session", serve.DefaultMaxSession, "end a session after this long; 0 for never")
	fs.IntVar(&o.serve.MaxConns, "max-conns", serve.DefaultMaxConns, "open connections (and sessions) at most")
	fs.Float64Var(&o.serve.RatePerSec, "rate", serve.DefaultRatePerSec, "new connections per second per source address, after a burst of 8")
	for _, f := range []string{"authorized-keys", "trusted-ca", "host-key"} {
		cmd.MarkFlagFilename(f)
	}
	sortFlagsAsRegistered(cmd)
	return cmd
}

// runServe checks the keys, loads the model and serves until ctx ends.
func runServe(ctx context.Context, a *app, o *serveOptions) error {
	o.serve.Logger = slog.New(slog.NewTextHandler(a.stderr, nil))
	// Keys and host key first: no model download for a server that cannot start.
	if err := serve.Check(o.serve); err != nil {
		return err
	}
	m, err := o.model.load(ctx, a)
	if err != nil {
		return err
	}
	defer m.Close()
	o.serve.Session.LoadTuned = o.explorer.tuned.loader(func() *inference.Model { return m }, func(p func(hub.Progress)) hub.Options { return o.model.loadOptions(p).Hub })
	srv, err := serve.New(o.serve, m)
	if err != nil {
		return err
	}
	return srv.ListenAndServe(ctx)
}
