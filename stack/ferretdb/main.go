// Command ferretdb-launcher runs an embedded FerretDB (MongoDB wire protocol) on SQLite or
// PostgreSQL for the local stack (stack/stack.sh). It exists because FerretDB's own cmd/ferretdb
// panics when built with `go install` (generated build/version files are not in the module).
//
// Configuration (flags override env):
//
//	-port / FERRETDB_PORT        TCP port on 127.0.0.1 (default 27017)
//	-listen-addr / FERRETDB_LISTEN_ADDR  full host:port (overrides -port)
//	-backend / FERRETDB_BACKEND  sqlite|postgresql (default sqlite; ADR 0005)
//	-data-dir / FERRETDB_DATA_DIR  SQLite directory (default .stack/data/ferretdb; sqlite only)
//	-postgresql-url / FERRETDB_POSTGRESQL_URL  e.g. postgres://postgres@127.0.0.1:54320/ferretdb
//	                             (required with -backend postgresql; the database must exist)
//	-log-level / FERRETDB_LOG_LEVEL  debug|info|warn|error (default info)
//	-pprof-addr / FERRETDB_PPROF_ADDR  host:port serving Go's /debug/pprof/ (default off): where the
//	                             store's CPU goes under a benchmark (`go tool pprof`)
//
// Pushdown note (v1.24.2): the embeddable ferretdb.Config has only Listener, Logger, Handler,
// PostgreSQLURL and SQLiteURL. There is no sort-pushdown option in this version; the only
// pushdown knobs (DisablePushdown, EnableNestedPushdown) are internal test options that the
// embeddable package hard-wires to their defaults (filter pushdown on, nested off).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	_ "net/http/pprof" // registers /debug/pprof/ on the default mux, served only with -pprof-addr
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/FerretDB/FerretDB/ferretdb"
)

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

func main() {
	defPort, err := strconv.Atoi(envOr("FERRETDB_PORT", "27017"))
	if err != nil {
		fmt.Fprintf(os.Stderr, "ferretdb-launcher: invalid FERRETDB_PORT: %v\n", err)
		os.Exit(2)
	}

	port := flag.Int("port", defPort, "TCP port to listen on (127.0.0.1)")
	listenAddr := flag.String("listen-addr", os.Getenv("FERRETDB_LISTEN_ADDR"), "listen host:port (overrides -port)")
	backend := flag.String("backend", envOr("FERRETDB_BACKEND", "sqlite"), "storage backend: sqlite or postgresql")
	dataDir := flag.String("data-dir", envOr("FERRETDB_DATA_DIR", ".stack/data/ferretdb"), "SQLite data directory")
	pgURL := flag.String("postgresql-url", os.Getenv("FERRETDB_POSTGRESQL_URL"), "PostgreSQL URL (postgresql backend)")
	logLevel := flag.String("log-level", envOr("FERRETDB_LOG_LEVEL", "info"), "log level: debug, info, warn, error")
	pprofAddr := flag.String("pprof-addr", os.Getenv("FERRETDB_PPROF_ADDR"), "serve /debug/pprof/ on host:port (off when empty)")
	flag.Parse()

	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(*logLevel)); err != nil {
		fmt.Fprintf(os.Stderr, "ferretdb-launcher: invalid log level %q: %v\n", *logLevel, err)
		os.Exit(2)
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lvl}))
	slog.SetDefault(logger)

	addr := *listenAddr
	if addr == "" {
		addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(*port))
	}

	cfg := ferretdb.Config{
		Listener: ferretdb.ListenerConfig{TCP: addr},
		Logger:   logger,
		Handler:  *backend,
	}
	// What the log line says the data lives in (never the URL's password, if it has one).
	var store string
	switch *backend {
	case "sqlite":
		dir, err := filepath.Abs(*dataDir)
		if err != nil {
			logger.Error("cannot resolve data dir", "dir", *dataDir, "err", err)
			os.Exit(1)
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			logger.Error("cannot create data dir", "dir", dir, "err", err)
			os.Exit(1)
		}
		// SQLite URI must name a directory and end with a slash.
		cfg.SQLiteURL = "file:" + dir + "/"
		store = cfg.SQLiteURL
	case "postgresql":
		u, err := url.Parse(*pgURL)
		if *pgURL == "" || err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
			fmt.Fprintf(os.Stderr, "ferretdb-launcher: -backend postgresql needs -postgresql-url "+
				"(or FERRETDB_POSTGRESQL_URL) like postgres://user@127.0.0.1:5432/ferretdb, got %q\n", *pgURL)
			os.Exit(2)
		}
		cfg.PostgreSQLURL = *pgURL
		store = u.Redacted()
	default:
		fmt.Fprintf(os.Stderr, "ferretdb-launcher: invalid -backend %q: use sqlite or postgresql\n", *backend)
		os.Exit(2)
	}

	f, err := ferretdb.New(&cfg)
	if err != nil {
		logger.Error("cannot construct FerretDB", "err", err)
		os.Exit(1)
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	logger.Info("ferretdb-launcher starting", "listen", addr, "backend", *backend, "store", store, "pid", os.Getpid())

	if *pprofAddr != "" {
		go func() {
			logger.Info("pprof listening", "addr", *pprofAddr)
			if err := http.ListenAndServe(*pprofAddr, nil); err != nil {
				logger.Error("pprof listener failed", "err", err)
			}
		}()
	}

	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()

	select {
	case err = <-done:
		// Run returned before a signal: e.g. the listener failed (port in use).
		if err == nil && ctx.Err() == nil {
			err = errors.New("FerretDB stopped unexpectedly (listener failed? see log above)")
		}
	case <-ctx.Done():
		logger.Info("signal received, shutting down")
		select {
		case err = <-done:
		case <-time.After(15 * time.Second):
			err = errors.New("shutdown timed out")
		}
	}

	if err != nil {
		logger.Error("ferretdb-launcher exiting", "err", err)
		os.Exit(1)
	}
	logger.Info("ferretdb-launcher stopped")
}
