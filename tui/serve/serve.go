// Package serve runs the explorer over SSH, so a team can `ssh -p 2222 box`
// and explore the box's model with nothing installed but an SSH client.
//
// Design. One charm.land/ssh server (through wish) accepts connections. A
// connection is admitted before the handshake by a token bucket per source
// address and caps on open connections, in all and per source, and on
// unauthenticated ones per source; the handshake, authentication included,
// must finish within seconds (see limit.go). It authenticates by public
// key only, against an authorized_keys file and optional trusted user CAs
// (see auth.go). Password and keyboard-interactive are never offered, and a
// server without a single usable key refuses to start: charm's server
// accepts everybody when no auth handler is set, so that state must be
// unreachable.
//
// Each SSH session that asks for a PTY and a shell gets its own Bubble Tea
// program running tui.New, with its own colour profile (from the client's
// TERM and COLORTERM), prompt, cursor and view, and its own
// inference.Session (prefix cache) over the one shared model. Lens requests
// take turns on a fair scheduler (sched.go) and are cancelled when the
// session ends. Sessions end when the user quits, after an idle timeout (no
// keyboard or mouse input), after a maximum session time, or at shutdown,
// each with a line saying why. Forwarding of ports, agents and X11,
// subsystems (sftp) and commands are refused, and logged; environment
// variables are capped in number and size (requests.go).
//
// The log (log/slog, to the given logger) records connections, refusals and
// sessions: who (user, key fingerprint), from where, and how long. It never
// records keys, passwords or prompts; what clients send (user names,
// terminal types) is escaped and cut by display.Safe, and refusals are
// throttled per source, so a hostile client cannot flood it.
package serve

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	tea "charm.land/bubbletea/v2"
	"charm.land/ssh"
	"charm.land/wish/v2/bubbletea"
	"github.com/charmbracelet/colorprofile"
	gossh "golang.org/x/crypto/ssh"

	"github.com/logitlens/logitlens/display"
	"github.com/logitlens/logitlens/inference"
	"github.com/logitlens/logitlens/theme"
	"github.com/logitlens/logitlens/tui"
)

// SharedModel is the loaded model every session computes on.
// *inference.Model implements it.
type SharedModel interface {
	// NewSession starts a session with its own prefix cache.
	NewSession() *inference.Session
	// Info describes the model.
	Info() inference.Info
}

var _ SharedModel = (*inference.Model)(nil)

// Defaults for the zero values of Options.
const (
	DefaultListen      = "127.0.0.1:2222"
	DefaultIdleTimeout = 15 * time.Minute
	DefaultMaxSession  = 4 * time.Hour
	DefaultMaxConns    = 16
	DefaultRatePerSec  = 0.5 // new connections per second per source address
	DefaultBurst       = 8
	// DefaultHandshakeTimeout bounds the SSH handshake, authentication
	// included: time for a client on a slow link, or a user typing a key's
	// passphrase, but not for holding a slot by sending nothing.
	DefaultHandshakeTimeout = 10 * time.Second
)

// DefaultMaxConnsPerSource is the cap on one source's open connections for
// a server of maxConns: a quarter of the slots (at least one) stays for
// the others.
func DefaultMaxConnsPerSource(maxConns int) int {
	return max(1, maxConns-max(1, maxConns/4))
}

// DefaultMaxPendingPerSource is the cap on one source's unauthenticated
// connections for a server of maxConns: half the slots (at least one), so
// a team behind one address can still connect all at once (eight at a
// time with the defaults), while someone without a key holds at most half
// the server, for HandshakeTimeout at a time.
func DefaultMaxPendingPerSource(maxConns int) int {
	return max(1, maxConns/2)
}

// Options configure a server. Zero values take the defaults above.
type Options struct {
	Listen         string // host:port; DefaultListen when empty
	AuthorizedKeys string // OpenSSH authorized_keys file; "~/" is expanded
	TrustedCA      string // file of trusted user CA public keys; "" for none
	HostKey        string // private host key, created when missing; DefaultHostKeyPath() when empty

	// Session is how every session's explorer starts: its prompt, top-k
	// (0 means 10), target, rows, lens (LoadTuned: sessions share what it
	// loads) and colours. The server sets the model, the backend and what
	// a remote explorer may not do (snapshots, a history file).
	Session tui.Options

	IdleTimeout time.Duration // end a session after this long without input; negative: never
	MaxSession  time.Duration // end a session after this long; negative: never
	MaxConns    int           // open connections (and sessions) at most
	RatePerSec  float64       // new connections per second per source address, after Burst
	Burst       int           // new connections a source may open at once
	Workers     int           // lens computations at once; 0 means 1 (see sched.go)

	HandshakeTimeout    time.Duration // SSH handshake and authentication at most
	MaxConnsPerSource   int           // open connections from one source; 0: DefaultMaxConnsPerSource(MaxConns)
	MaxPendingPerSource int           // unauthenticated connections from one source; 0: DefaultMaxPendingPerSource(MaxConns)

	Logger *slog.Logger // nil: slog.Default()
}

// DefaultHostKeyPath is $XDG_DATA_HOME/logitlens/ssh_host_ed25519_key, or
// ~/.local/share/logitlens/ssh_host_ed25519_key.
func DefaultHostKeyPath() string {
	dir := os.Getenv("XDG_DATA_HOME")
	if dir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			home = "."
		}
		dir = filepath.Join(home, ".local", "share")
	}
	return filepath.Join(dir, "logitlens", "ssh_host_ed25519_key")
}

// Server serves the explorer over SSH.
type Server struct {
	opts   Options
	model  SharedModel
	log    *slog.Logger
	auth   *authorizer
	signer gossh.Signer
	srv    *ssh.Server
	ln     net.Listener
	sched  *scheduler
	adm    *admission
	rate   *rateLimiter
	// refusals throttles the log lines of refused connections.
	refusals *logThrottle

	mu       sync.Mutex
	sessions map[*liveSession]struct{}
	closing  bool
	nextID   atomic.Uint64
}

// liveSession is a running explorer session, ended from outside with a
// reason.
type liveSession struct{ end func(reason string) }

// New checks the options, reads the keys and the host key (creating it when
// missing) and binds the listening socket. It refuses to build a server
// that would accept no key, and never one that would accept any.
func New(opts Options, model SharedModel) (*Server, error) {
	if model == nil {
		return nil, errors.New("serve: no model")
	}
	opts = withDefaults(opts)
	if err := checkOptions(opts); err != nil {
		return nil, err
	}
	s := &Server{
		opts: opts, model: model, log: opts.Logger,
		sched:    newScheduler(opts.Workers),
		adm:      newAdmission(opts.MaxConns, opts.MaxConnsPerSource, opts.MaxPendingPerSource),
		rate:     newRateLimiter(opts.RatePerSec, opts.Burst),
		refusals: newLogThrottle(refusalLogPeriod),
		sessions: map[*liveSession]struct{}{},
	}
	var err error
	if s.auth, err = newAuthorizer(opts.AuthorizedKeys, opts.TrustedCA, s.log); err != nil {
		return nil, err
	}
	if s.signer, err = loadHostKey(opts.HostKey); err != nil {
		return nil, err
	}
	s.srv = s.newSSHServer()
	if s.ln, err = net.Listen("tcp", opts.Listen); err != nil {
		return nil, fmt.Errorf("serve: %w", err)
	}
	return s, nil
}

// Check validates the options, the key files and the host key (creating
// it when missing) without a model or a socket, so a command can fail fast
// before loading a model.
func Check(opts Options) error {
	opts = withDefaults(opts)
	opts.Logger = slog.New(slog.DiscardHandler) // New logs what it loads
	if err := checkOptions(opts); err != nil {
		return err
	}
	if _, err := newAuthorizer(opts.AuthorizedKeys, opts.TrustedCA, opts.Logger); err != nil {
		return err
	}
	_, err := loadHostKey(opts.HostKey)
	return err
}

func checkOptions(opts Options) error {
	if _, err := theme.Lookup(opts.Session.Palette); err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	if k := opts.Session.TopK; k < 1 || k > inference.MaxTopK {
		return fmt.Errorf("serve: top-k %d is outside 1..%d", k, inference.MaxTopK)
	}
	return nil
}

func withDefaults(o Options) Options {
	if o.Listen == "" {
		o.Listen = DefaultListen
	}
	if o.HostKey == "" {
		o.HostKey = DefaultHostKeyPath()
	}
	o.AuthorizedKeys = expandHome(o.AuthorizedKeys)
	o.TrustedCA = expandHome(o.TrustedCA)
	o.HostKey = expandHome(o.HostKey)
	if o.Session.TopK == 0 {
		o.Session.TopK = 10
	}
	if o.IdleTimeout == 0 {
		o.IdleTimeout = DefaultIdleTimeout
	}
	if o.MaxSession == 0 {
		o.MaxSession = DefaultMaxSession
	}
	if o.MaxConns <= 0 {
		o.MaxConns = DefaultMaxConns
	}
	if o.RatePerSec <= 0 {
		o.RatePerSec = DefaultRatePerSec
	}
	if o.Burst <= 0 {
		o.Burst = DefaultBurst
	}
	if o.HandshakeTimeout <= 0 {
		o.HandshakeTimeout = DefaultHandshakeTimeout
	}
	if o.MaxConnsPerSource <= 0 {
		o.MaxConnsPerSource = DefaultMaxConnsPerSource(o.MaxConns)
	}
	if o.MaxPendingPerSource <= 0 {
		o.MaxPendingPerSource = DefaultMaxPendingPerSource(o.MaxConns)
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
}

// expandHome turns a leading "~/" into the home directory (flag defaults
// are not expanded by a shell).
func expandHome(p string) string {
	if rest, ok := strings.CutPrefix(p, "~/"); ok {
		if home, err := os.UserHomeDir(); err == nil {
			return filepath.Join(home, rest)
		}
	}
	return p
}

// Addr is the address the server listens on.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// HostKeyFingerprint is the SHA256 fingerprint of the host key, as
// `ssh-keygen -lf` prints it, for users to check on first connection.
func (s *Server) HostKeyFingerprint() string { return gossh.FingerprintSHA256(s.signer.PublicKey()) }

// Close releases the listening socket of a server that is not serving.
func (s *Server) Close() error { return s.ln.Close() }

// shutdownGrace is how long sessions get to say goodbye at shutdown.
const shutdownGrace = 3 * time.Second

// ListenAndServe serves until ctx is cancelled, then ends every session
// with a notice and returns nil; it returns early only if the listener
// fails.
func (s *Server) ListenAndServe(ctx context.Context) error {
	s.log.Info("serving the explorer over SSH", "addr", s.Addr().String(), "host_key", s.HostKeyFingerprint(),
		"model", s.model.Info().ID, "max_conns", s.opts.MaxConns, "max_conns_per_source", s.opts.MaxConnsPerSource,
		"max_unauthenticated_per_source", s.opts.MaxPendingPerSource, "handshake_timeout", s.opts.HandshakeTimeout,
		"idle_timeout", s.opts.IdleTimeout, "max_session", s.opts.MaxSession)
	errc := make(chan error, 1)
	go func() { errc <- s.srv.Serve(s.ln) }()
	select {
	case err := <-errc:
		if errors.Is(err, ssh.ErrServerClosed) {
			return nil
		}
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	s.log.Info("shutting down")
	s.mu.Lock()
	s.closing = true
	live := make([]*liveSession, 0, len(s.sessions))
	for ls := range s.sessions {
		live = append(live, ls)
	}
	s.mu.Unlock()
	for _, ls := range live {
		go ls.end("the server is shutting down") // Quit blocks until a starting program runs
	}
	// Wait for the sessions to say goodbye, then close every connection
	// (clients need not close theirs).
	for deadline := time.Now().Add(shutdownGrace); s.live() > 0 && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
	}
	_ = s.srv.Close()
	<-errc
	return nil
}

// newSSHServer configures charm's server: public key only, admission before
// the handshake, sessions only (no forwarding, subsystems or agents).
func (s *Server) newSSHServer() *ssh.Server {
	srv := &ssh.Server{
		Handler:          s.handle,
		HostSigners:      []ssh.Signer{s.signer},
		PublicKeyHandler: s.publicKey,
		ConnCallback:     s.admit,
		Version:          "logitlens",
		// Only session channels, whose requests are filtered
		// (requests.go); direct-tcpip (ssh -L) and every other channel
		// type, and global requests (tcpip-forward, ssh -R) are refused
		// and logged; no subsystems (sftp).
		ChannelHandlers:   map[string]ssh.ChannelHandler{"session": s.session, "default": s.refuseChannel},
		RequestHandlers:   map[string]ssh.RequestHandler{"default": s.refuseGlobal},
		SubsystemHandlers: map[string]ssh.SubsystemHandler{},
		HandshakeTimeout:  s.opts.HandshakeTimeout,
		ServerConfigCallback: func(ctx ssh.Context) *gossh.ServerConfig {
			tc, _ := ctx.Value(ctxConnKey{}).(*trackedConn)
			return &gossh.ServerConfig{
				MaxAuthTries: 6,
				AuthLogCallback: func(conn gossh.ConnMetadata, method string, err error) {
					if err == nil && tc != nil {
						tc.authenticated() // the key's signature is verified
					}
					s.logAuth(conn, method, err)
				},
			}
		},
		ConnectionFailedCallback: func(conn net.Conn, err error) {
			remote := conn.RemoteAddr()
			s.refusals.log(s.log, slog.LevelInfo, sourceKey(remote)+"\x00failed", "connection failed",
				"remote", remote.String(), "err", display.Safe(err.Error()))
		},
	}
	// Backstops for connections that never open a session: the session's
	// own timers end it first, with a message.
	if s.opts.IdleTimeout > 0 {
		srv.IdleTimeout = s.opts.IdleTimeout + time.Minute
	}
	if s.opts.MaxSession > 0 {
		srv.MaxTimeout = s.opts.MaxSession + time.Minute
	}
	return srv
}

// ctxConnKey is the ssh.Context key of a connection's *trackedConn.
type ctxConnKey struct{}

// admit decides whether to start a handshake with a new connection (see
// limit.go), and tracks the ones it admits.
func (s *Server) admit(ctx ssh.Context, conn net.Conn) net.Conn {
	remote := conn.RemoteAddr()
	src := sourceKey(remote)
	why := ""
	if !s.rate.allow(remote) {
		why = refusedRate
	} else {
		why = s.adm.admit(src)
	}
	if why != "" {
		total, open, pending := s.adm.counts(src)
		s.refusals.log(s.log, slog.LevelWarn, src+"\x00"+why, "connection refused", "remote", remote.String(), "source", src,
			"reason", why, "open", total, "open_from_source", open, "unauthenticated_from_source", pending)
		refuse(conn, refusalMessages[why])
		return nil
	}
	tc := &trackedConn{Conn: conn, adm: s.adm, src: src, pending: true}
	ctx.SetValue(ctxConnKey{}, tc)
	return tc
}

// refuse writes a line before the SSH version exchange (RFC 4253 §4.2
// allows it; `ssh -v` shows it) and lets the caller close.
func refuse(conn net.Conn, why string) {
	_ = conn.SetWriteDeadline(time.Now().Add(time.Second))
	_, _ = io.WriteString(conn, "logitlens: "+why+"\r\n")
}

// publicKey authorises a key (or user certificate) for the user.
func (s *Server) publicKey(ctx ssh.Context, key ssh.PublicKey) bool {
	ok, why := s.auth.allow(ctx.User(), key)
	if !ok {
		s.log.Info("public key refused", append([]any{"user", display.Safe(ctx.User()), "remote", ctx.RemoteAddr().String(), "reason", display.Safe(why)}, keyAttrs(key)...)...)
	}
	return ok
}

// logAuth logs refused attempts of methods the server does not offer.
func (s *Server) logAuth(conn gossh.ConnMetadata, method string, err error) {
	if err == nil || method == "none" || method == "publickey" {
		return
	}
	s.log.Warn("authentication refused", "user", display.Safe(conn.User()), "remote", conn.RemoteAddr().String(), "method", display.Safe(method))
}

// handle runs one SSH session: checks, then the explorer.
func (s *Server) handle(sess ssh.Session) {
	start := time.Now()
	who := append([]any{"user", display.Safe(sess.User()), "remote", sess.RemoteAddr().String()}, keyAttrs(sess.PublicKey())...)
	pty, windows, hasPty := sess.Pty()
	switch {
	case !hasPty:
		s.log.Info("session refused", append(who, "reason", "no pty")...)
		fmt.Fprintln(sess.Stderr(), "logitlens: the explorer needs a terminal: connect with ssh -t (and without a command)")
		_ = sess.Exit(1)
		return
	case sess.RawCommand() != "":
		s.log.Info("session refused", append(who, "reason", "command")...)
		fmt.Fprint(sess.Stderr(), "logitlens: this server runs only the explorer: connect without a command\r\n")
		_ = sess.Exit(1)
		return
	}

	ls := &liveSession{}
	var reason atomic.Pointer[string]
	var program atomic.Pointer[tea.Program]
	ls.end = func(why string) {
		if reason.CompareAndSwap(nil, &why) {
			if p := program.Load(); p != nil {
				p.Quit()
			}
		}
	}
	if !s.register(ls) {
		s.log.Info("session refused", append(who, "reason", "session limit")...)
		fmt.Fprint(sess.Stderr(), "logitlens: the server is full or shutting down; try again later\r\n")
		_ = sess.Exit(1)
		return
	}
	defer s.unregister(ls)

	id := s.nextID.Add(1)
	env := append(sess.Environ(), "TERM="+pty.Term)
	profile := colorprofile.Env(env)
	who = append(who, "session", id)
	s.log.Info("session start", append(who, "term", display.Safe(pty.Term), "width", pty.Window.Width, "height", pty.Window.Height, "colour", profile.String())...)

	ctx, cancel := context.WithCancel(sess.Context())
	defer cancel()
	lensSession := s.model.NewSession()
	defer lensSession.Close() // runs after cancel() below: a lens in flight ends first, then the device's memory is freed
	backend := newFairBackend(lensSession, s.sched, ctx)
	explorer := s.opts.Session
	explorer.ModelID = s.model.Info().ID
	explorer.NoSnapshots = "snapshots are off over SSH: they would be written on the server (run `logitlens lens … -o FILE` there)"
	explorer.Remote = true
	explorer.HistoryFile = "" // one user's prompts are not another's
	explorer.Load = func(context.Context, func(inference.Progress)) (tui.Backend, error) { return backend, nil }
	m := tui.New(explorer)
	in := &activityReader{r: sess}
	in.touch()
	opts := append(bubbletea.MakeOptions(sess),
		tea.WithWindowSize(clampWindow(pty.Window)),
		tea.WithInput(in),
		tea.WithContext(ctx),
		tea.WithoutSignalHandler(),
		tea.WithFilter(filterRemote),
	)
	p := tea.NewProgram(m, opts...)
	program.Store(p)
	if reason.Load() != nil { // ended while starting; Quit blocks until Run starts
		go p.Quit()
	}
	go forwardWindows(ctx, p, windows)
	go s.watch(ctx, in, ls)

	_, err := p.Run()
	cancel()
	why := "quit"
	switch r := reason.Load(); {
	case r != nil:
		why = *r
		fmt.Fprintf(sess, "\r\nlogitlens: %s\r\n", why)
	case sess.Context().Err() != nil:
		why = "disconnected"
	case err != nil:
		why = "error"
	}
	attrs := append(who, "reason", why, "duration", time.Since(start).Round(time.Millisecond).String())
	if err != nil && !errors.Is(err, tea.ErrProgramKilled) {
		attrs = append(attrs, "err", err)
	}
	s.log.Info("session end", attrs...)
	_ = sess.Exit(0)
}

// filterRemote adapts the explorer to a remote terminal: suspending has no
// meaning for a session. (ctrl+v reaches the explorer, which, told that it
// is Remote, says to paste with the terminal instead of reading the
// server's clipboard.)
func filterRemote(_ tea.Model, msg tea.Msg) tea.Msg {
	if _, ok := msg.(tea.SuspendMsg); ok {
		return tea.ResumeMsg{}
	}
	return msg
}

// register records a session unless the server is closing or full.
func (s *Server) register(ls *liveSession) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing || len(s.sessions) >= s.opts.MaxConns {
		return false
	}
	s.sessions[ls] = struct{}{}
	return true
}

// live returns the number of running sessions.
func (s *Server) live() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.sessions)
}

func (s *Server) unregister(ls *liveSession) {
	s.mu.Lock()
	delete(s.sessions, ls)
	s.mu.Unlock()
}

// forwardWindows passes the client's window size changes to the program.
func forwardWindows(ctx context.Context, p *tea.Program, windows <-chan ssh.Window) {
	for {
		select {
		case <-ctx.Done():
			return
		case w, ok := <-windows:
			if !ok {
				return
			}
			width, height := clampWindow(w)
			p.Send(tea.WindowSizeMsg{Width: width, Height: height})
		}
	}
}

// Window sizes beyond these are clamped: a client announcing a huge
// terminal must not make the server render (and send) a huge screen.
const (
	maxWidth  = 1000
	maxHeight = 500
)

func clampWindow(w ssh.Window) (width, height int) {
	return max(1, min(w.Width, maxWidth)), max(1, min(w.Height, maxHeight))
}

// watch ends the session when it has been idle or open too long.
func (s *Server) watch(ctx context.Context, in *activityReader, ls *liveSession) {
	var deadline <-chan time.Time
	if s.opts.MaxSession > 0 {
		t := time.NewTimer(s.opts.MaxSession)
		defer t.Stop()
		deadline = t.C
	}
	var tick <-chan time.Time
	if s.opts.IdleTimeout > 0 {
		t := time.NewTicker(min(time.Second, s.opts.IdleTimeout/4))
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-deadline:
			ls.end(fmt.Sprintf("session time limit (%s) reached", s.opts.MaxSession))
			return
		case <-tick:
			if in.idle() >= s.opts.IdleTimeout {
				ls.end(fmt.Sprintf("closed after %s without input", s.opts.IdleTimeout))
				return
			}
		}
	}
}

// activityReader records when the user last typed (or clicked).
type activityReader struct {
	r    io.Reader
	last atomic.Int64 // unix nanoseconds
}

func (a *activityReader) Read(p []byte) (int, error) {
	n, err := a.r.Read(p)
	if n > 0 {
		a.touch()
	}
	return n, err
}

func (a *activityReader) touch() { a.last.Store(time.Now().UnixNano()) }

func (a *activityReader) idle() time.Duration {
	return time.Since(time.Unix(0, a.last.Load()))
}
