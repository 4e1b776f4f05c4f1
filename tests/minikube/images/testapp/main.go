// testapp: the process inside the test bed's images (tests/minikube/lib/images.sh).
// Standard library only, built statically by the stack.
//
//	testapp pause                 the pod sandbox (pause) process: waits for SIGTERM/SIGINT
//	testapp serve                 HTTP on $PORT (default 8080):
//	  GET /healthz                200 "ok", or $LOCO_TEST_HEALTHZ_STATUS (the unhealthy image sets 500)
//	  GET /env-sha256/NAME        hex SHA-256 of env variable NAME's value (404 when unset): a test
//	                              checks a value without it being printed anywhere
//	  GET anything else           200, text: app name and version ($LOCO_TEST_APP, $LOCO_TEST_VERSION,
//	                              defaulting to the image's), host, path, and the NAMES of the env
//	                              variables (never their values)
package main

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"sort"
	"strconv"
	"strings"
	"syscall"
)

func env(name, def string) string {
	if v, ok := os.LookupEnv(name); ok && v != "" {
		return v
	}
	return def
}

func main() {
	mode := "serve"
	if len(os.Args) > 1 {
		mode = os.Args[1]
	}
	switch mode {
	case "pause":
		ch := make(chan os.Signal, 1)
		signal.Notify(ch, syscall.SIGTERM, syscall.SIGINT)
		<-ch
	case "serve":
		serve()
	default:
		fmt.Fprintf(os.Stderr, "usage: testapp pause|serve\n")
		os.Exit(2)
	}
}

func serve() {
	name := env("LOCO_TEST_APP", env("LOCO_TEST_IMAGE_NAME", "testapp"))
	version := env("LOCO_TEST_VERSION", "1")
	health, err := strconv.Atoi(env("LOCO_TEST_HEALTHZ_STATUS", "200"))
	if err != nil {
		health = 500
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(health)
		fmt.Fprintf(w, "status %d\n", health)
	})
	mux.HandleFunc("/env-sha256/", func(w http.ResponseWriter, r *http.Request) {
		v, ok := os.LookupEnv(strings.TrimPrefix(r.URL.Path, "/env-sha256/"))
		if !ok {
			http.NotFound(w, r)
			return
		}
		sum := sha256.Sum256([]byte(v))
		fmt.Fprintln(w, hex.EncodeToString(sum[:]))
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		var names []string
		for _, kv := range os.Environ() {
			names = append(names, strings.SplitN(kv, "=", 2)[0])
		}
		sort.Strings(names)
		hostname, _ := os.Hostname()
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintf(w, "app %s\nversion %s\npod %s\nhost %s\npath %s\nenv %s\n",
			name, version, hostname, r.Host, r.URL.Path, strings.Join(names, ","))
	})
	if v, ok := os.LookupEnv("LOCO_TEST_SHA256_OF"); ok {
		sum := sha256.Sum256([]byte(os.Getenv(v)))
		fmt.Printf("sha256(%s)=%s\n", v, hex.EncodeToString(sum[:]))
	}
	addr := ":" + env("PORT", "8080")
	fmt.Printf("testapp %s %s listening on %s\n", name, version, addr)
	srv := &http.Server{Addr: addr, Handler: mux}
	go func() {
		ch := make(chan os.Signal, 1)
		signal.Notify(ch, syscall.SIGTERM, syscall.SIGINT)
		<-ch
		_ = srv.Close()
	}()
	if err := srv.ListenAndServe(); err != nil && err != http.ErrServerClosed {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
