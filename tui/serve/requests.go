package serve

import (
	"sync"

	"charm.land/ssh"
	gossh "golang.org/x/crypto/ssh"

	"github.com/logitlens/logitlens/display"
)

// What an authenticated client may ask for besides its session, and how
// much of it: charm's session handler accepts every environment variable
// and agent forwarding, and refuses forwarding, sftp and X11 without a
// word. Here session requests pass through a filter first (filterRequests)
// and every other channel type and global request is refused here, so each
// refusal is logged, at most a few lines per connection.

// Caps on environment variables (ssh SendEnv/SetEnv) per session: the
// explorer reads a handful (COLORTERM, NO_COLOR, …), and each accepted one
// is kept for the session's life.
const (
	maxEnvVars  = 32
	maxEnvBytes = 1024 // name plus value
)

// maxRefusalLogs is how many refusals one connection gets logged; the rest
// are counted in one last line.
const maxRefusalLogs = 5

// refusalLog is a connection's count of logged refusals.
type refusalLog struct {
	mu sync.Mutex
	n  int
}

// ctxRefusalKey is the ssh.Context key of a connection's *refusalLog.
type ctxRefusalKey struct{}

// logRefused logs what a connection asked for and was refused, the first
// maxRefusalLogs times, then once that further refusals are not logged.
func (s *Server) logRefused(ctx ssh.Context, what string, attrs ...any) {
	rl, _ := ctx.Value(ctxRefusalKey{}).(*refusalLog)
	if rl == nil {
		rl = &refusalLog{}
		ctx.SetValue(ctxRefusalKey{}, rl)
	}
	rl.mu.Lock()
	rl.n++
	n := rl.n
	rl.mu.Unlock()
	switch {
	case n <= maxRefusalLogs:
		attrs = append([]any{"user", display.Safe(ctx.User()), "remote", ctx.RemoteAddr().String(), "request", what}, attrs...)
		s.log.Warn("request refused", attrs...)
	case n == maxRefusalLogs+1:
		s.log.Warn("request refused; further refusals on this connection are not logged",
			"user", display.Safe(ctx.User()), "remote", ctx.RemoteAddr().String())
	}
}

// refuseChannel refuses a channel other than a session: direct-tcpip
// (ssh -L, ssh -D), x11, auth-agent and anything else.
func (s *Server) refuseChannel(_ *ssh.Server, _ *gossh.ServerConn, nc gossh.NewChannel, ctx ssh.Context) {
	s.logRefused(ctx, "channel "+display.Safe(nc.ChannelType()))
	_ = nc.Reject(gossh.Prohibited, "this server runs only the explorer")
}

// refuseGlobal refuses a global request, logging forwarding (ssh -R)
// requests; keep-alives and OpenSSH's no-more-sessions are answered
// without a log line, as they are routine.
func (s *Server) refuseGlobal(ctx ssh.Context, _ *ssh.Server, req *gossh.Request) (bool, []byte) {
	switch req.Type {
	case "tcpip-forward", "cancel-tcpip-forward", "streamlocal-forward@openssh.com", "cancel-streamlocal-forward@openssh.com":
		s.logRefused(ctx, display.Safe(req.Type))
	}
	return false, nil
}

// session runs charm's session handler on a channel whose requests pass
// through filterRequests.
func (s *Server) session(srv *ssh.Server, conn *gossh.ServerConn, nc gossh.NewChannel, ctx ssh.Context) {
	ssh.DefaultSessionHandler(srv, conn, &filteredChannel{NewChannel: nc, s: s, ctx: ctx}, ctx)
}

// filteredChannel is a session channel whose requests are filtered once
// accepted.
type filteredChannel struct {
	gossh.NewChannel
	s   *Server
	ctx ssh.Context
}

func (c *filteredChannel) Accept() (gossh.Channel, <-chan *gossh.Request, error) {
	ch, reqs, err := c.NewChannel.Accept()
	if err != nil {
		return ch, reqs, err
	}
	out := make(chan *gossh.Request)
	go c.s.filterRequests(c.ctx, reqs, out)
	return ch, out, nil
}

// filterRequests passes a session's requests on to charm's handler in
// order, answering here the ones it must not see: subsystems (sftp), X11
// and agent forwarding, and environment variables past the caps.
func (s *Server) filterRequests(ctx ssh.Context, in <-chan *gossh.Request, out chan<- *gossh.Request) {
	defer close(out)
	envs, envRefused := 0, 0
	for req := range in {
		refuse := ""
		switch req.Type {
		case "subsystem":
			var p struct{ Name string }
			_ = gossh.Unmarshal(req.Payload, &p)
			refuse = "subsystem " + display.Safe(p.Name)
		case "x11-req", "auth-agent-req@openssh.com":
			refuse = req.Type
		case "env":
			var kv struct{ Name, Value string }
			err := gossh.Unmarshal(req.Payload, &kv)
			switch {
			case err != nil, envs >= maxEnvVars, len(kv.Name)+len(kv.Value) > maxEnvBytes:
				if envRefused++; envRefused == 1 {
					s.logRefused(ctx, "env "+display.Safe(kv.Name), "reason", "environment variables are limited in number and size",
						"max_vars", maxEnvVars, "max_bytes", maxEnvBytes, "bytes", len(kv.Name)+len(kv.Value))
				}
				if req.WantReply {
					_ = req.Reply(false, nil)
				}
				continue
			}
			envs++
		}
		if refuse != "" {
			s.logRefused(ctx, refuse)
			if req.WantReply {
				_ = req.Reply(false, nil)
			}
			continue
		}
		out <- req
	}
	if envRefused > 1 {
		s.log.Warn("env requests refused", "user", display.Safe(ctx.User()), "remote", ctx.RemoteAddr().String(), "count", envRefused)
	}
}
