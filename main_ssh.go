package main

import (
	"context"
	"fmt"
	"log/slog"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"mailtap/config"
	"mailtap/jsonstore"
	"mailtap/sinks"
	"mailtap/sshui"
	"mailtap/statusweb"
	"mailtap/tui"
	"mailtap/watcher"
)

// startSSH starts the SSH monitor server when ssh.addr is set (issue 15):
// it binds now, so that a taken port or a bad host key stops the start,
// and serves on wg until ctx ends. The status command shares the status
// server's snapshot code; the sessions' log pane reads logs.
func startSSH(ctx context.Context, wg *sync.WaitGroup, cfg *config.Config, mgr *watcher.Manager, reg prometheus.Registerer,
	log *slog.Logger, store *jsonstore.Store, logs *tui.LogBuffer, logPath string, sinkStatus func() []sinks.Status) (exitCode int, err error) {
	if cfg.SSH.Addr == "" {
		return exitOK, nil
	}
	snap := statusweb.NewSnapshots(mgr, statusweb.SnapshotOptions{Version: version, TokenRequired: cfg.HTTP.TokenEnv != "", Logger: log, Sinks: sinkStatus})
	srv, err := sshui.New(mgr, sshui.Options{
		Addr: cfg.SSH.Addr, AuthorizedKeys: cfg.SSH.AuthorizedKeys, ReadOnlyKeys: cfg.SSH.ReadOnlyKeys,
		HostKey: cfg.SSH.HostKey, StateDir: store.StateDir(),
		Status:     snap.JSON,
		TUI:        tui.Options{Out: store.Dir(), Logs: logs, LogPath: logPath, Version: version, Sinks: sinkStatus},
		Registerer: reg, Logger: log,
	})
	if err != nil {
		return exitUsage, err
	}
	if err := srv.Listen(); err != nil {
		return exitFailure, err
	}
	log.Info("ssh monitor", "addr", srv.Addr(), "host_key_fingerprint", srv.HostKeyFingerprint(),
		"connect", fmt.Sprintf("ssh -p %s HOST", portOf(srv.Addr())))
	wg.Go(func() { snap.Run(ctx) })
	wg.Go(func() {
		if err := srv.Serve(ctx); err != nil {
			log.Error("ssh server", "err", err)
		}
	})
	return exitOK, nil
}

func portOf(addr string) string {
	for i := len(addr) - 1; i >= 0; i-- {
		if addr[i] == ':' {
			return addr[i+1:]
		}
	}
	return addr
}
