package main

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gologin/gologin/devidp/devidptest"
)

func TestCheckConfig(t *testing.T) {
	_, idp := devidptest.NewServer(t)

	tests := []struct {
		name    string
		env     map[string]string
		wantErr string // empty: success
		wantOut string
	}{
		{"development provider", nil, "", "embedded development provider"},
		{"reachable provider", map[string]string{"OIDC_ISSUER": idp.Issuer(), "OIDC_CLIENT_ID": "c", "OIDC_CLIENT_SECRET": "s"},
			"", "discovery document of " + idp.Issuer() + " fetched"},
		{"unreachable provider", map[string]string{"OIDC_ISSUER": "http://127.0.0.1:1", "OIDC_CLIENT_ID": "c", "OIDC_CLIENT_SECRET": "s", "PROVIDER_TIMEOUT": "2s"},
			"provider http://127.0.0.1:1", ""},
		{"invalid configuration", map[string]string{"PORT": "x", "LOG_FORMAT": "xml"}, "LOG_FORMAT", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := map[string]string{"SESSION_STORE": "sqlite:" + filepath.Join(t.TempDir(), "s.db")}
			for k, v := range tt.env {
				env[k] = v
			}
			var out bytes.Buffer
			err := run(context.Background(), []string{"webapp", "-check-config"}, func(k string) string { return env[k] }, &out)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("got %v, want success; output:\n%s", err, out.String())
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("got %v, want an error naming %q", err, tt.wantErr)
			}
			if !strings.Contains(out.String(), tt.wantOut) {
				t.Errorf("output lacks %q:\n%s", tt.wantOut, out.String())
			}
		})
	}
}

func TestJSONLogs(t *testing.T) {
	env := map[string]string{"LOG_FORMAT": "json", "SESSION_STORE": "memory"}
	var out bytes.Buffer
	if err := run(context.Background(), []string{"webapp", "-check-config"}, func(k string) string { return env[k] }, &out); err != nil {
		t.Fatal(err)
	}
	var logged int
	for _, line := range strings.Split(out.String(), "\n") {
		if !strings.HasPrefix(line, "{") {
			continue
		}
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil || rec["level"] == nil || rec["msg"] == nil {
			t.Errorf("log line is not a JSON record: %s", line)
		}
		logged++
	}
	if logged == 0 {
		t.Fatalf("no JSON log lines in:\n%s", out.String())
	}
}
