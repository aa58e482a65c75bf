package config

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func getenv(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

// checked keeps the fields these tests assert on.
func checked(c Config) Config {
	return Config{
		ListenAddr:      c.ListenAddr,
		BaseURL:         c.BaseURL,
		Secure:          c.Secure,
		Provider:        c.Provider,
		Issuer:          c.Issuer,
		Auth0Domain:     c.Auth0Domain,
		ClientID:        c.ClientID,
		ClientSecret:    c.ClientSecret,
		Scopes:          c.Scopes,
		MetricsAddr:     c.MetricsAddr,
		MetricsDefault:  c.MetricsDefault,
		SessionStore:    c.SessionStore,
		SessionMaxAge:   c.SessionMaxAge,
		SessionIdle:     c.SessionIdle,
		ProviderTimeout: c.ProviderTimeout,
		ClockSkew:       c.ClockSkew,
	}
}

func defaults() Config {
	return Config{
		ListenAddr:      "127.0.0.1:3000",
		BaseURL:         "http://localhost:3000",
		Provider:        Dev,
		Scopes:          []string{"openid", "profile", "email"},
		MetricsAddr:     "127.0.0.1:9464",
		MetricsDefault:  true,
		SessionStore:    "sqlite:sessions.db",
		SessionMaxAge:   168 * time.Hour,
		SessionIdle:     24 * time.Hour,
		ProviderTimeout: 10 * time.Second,
		ClockSkew:       time.Minute,
	}
}

func auth0Env(domain string) map[string]string {
	return map[string]string{"AUTH0_DOMAIN": domain, "AUTH0_CLIENT_ID": "a0-id", "AUTH0_CLIENT_SECRET": "a0-secret"}
}

func oidcEnv(issuer string) map[string]string {
	return map[string]string{"OIDC_ISSUER": issuer, "OIDC_CLIENT_ID": "oidc-id", "OIDC_CLIENT_SECRET": "oidc-secret"}
}

func with(base map[string]string, kv ...string) map[string]string {
	m := make(map[string]string, len(base)+len(kv)/2)
	for k, v := range base {
		m[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m
}

func TestLoad(t *testing.T) {
	auth0 := func(domain string) func(*Config) {
		return func(c *Config) {
			c.Provider, c.Auth0Domain, c.ClientID, c.ClientSecret = Auth0, domain, "a0-id", "a0-secret"
		}
	}
	oidc := func(issuer string) func(*Config) {
		return func(c *Config) {
			c.Provider, c.Issuer, c.ClientID, c.ClientSecret = OIDC, issuer, "oidc-id", "oidc-secret"
		}
	}
	tests := []struct {
		name     string
		env      map[string]string
		want     func(*Config) // changes from defaults()
		callback string        // CallbackURL, if checked
	}{
		{name: "defaults", env: nil, callback: "http://localhost:3000/callback"},
		{name: "PORT", env: map[string]string{"PORT": "8080"}, want: func(c *Config) {
			c.ListenAddr, c.BaseURL = "127.0.0.1:8080", "http://localhost:8080"
		}},
		{name: "LISTEN_ADDR alone sets the base URL's port", env: map[string]string{"LISTEN_ADDR": "127.0.0.1:9000"}, want: func(c *Config) {
			c.ListenAddr, c.BaseURL = "127.0.0.1:9000", "http://localhost:9000"
		}},
		{name: "LISTEN_ADDR wins over PORT", env: map[string]string{"PORT": "8080", "LISTEN_ADDR": "127.0.0.1:9000"}, want: func(c *Config) {
			c.ListenAddr, c.BaseURL = "127.0.0.1:9000", "http://localhost:9000"
		}},
		{name: "LISTEN_ADDR localhost with the dev provider", env: map[string]string{"LISTEN_ADDR": "localhost:9000"}, want: func(c *Config) {
			c.ListenAddr, c.BaseURL = "localhost:9000", "http://localhost:9000"
		}},
		{name: "LISTEN_ADDR IPv6 loopback with the dev provider", env: map[string]string{"LISTEN_ADDR": "[::1]:9000"}, want: func(c *Config) {
			c.ListenAddr, c.BaseURL = "[::1]:9000", "http://localhost:9000"
		}},
		{name: "LISTEN_ADDR on all interfaces with a real provider", env: with(oidcEnv("https://accounts.example.com"), "LISTEN_ADDR", ":3000"), want: func(c *Config) {
			c.ListenAddr = ":3000"
			oidc("https://accounts.example.com")(c)
		}},
		{name: "METRICS_ADDR", env: map[string]string{"METRICS_ADDR": "127.0.0.1:9090"}, want: func(c *Config) {
			c.MetricsAddr, c.MetricsDefault = "127.0.0.1:9090", false
		}},
		{name: "METRICS_ADDR off", env: map[string]string{"METRICS_ADDR": "Off"}, want: func(c *Config) {
			c.MetricsAddr, c.MetricsDefault = "", false
		}},
		{name: "values are trimmed", env: map[string]string{"PORT": " 8080\n", "SESSION_STORE": " memory "}, want: func(c *Config) {
			c.ListenAddr, c.BaseURL, c.SessionStore = "127.0.0.1:8080", "http://localhost:8080", "memory"
		}},
		{name: "APP_BASE_URL trailing slash trimmed", env: map[string]string{"APP_BASE_URL": "http://localhost:3000/"},
			callback: "http://localhost:3000/callback"},
		{name: "APP_BASE_URL trailing slashes trimmed", env: map[string]string{"APP_BASE_URL": "http://localhost:3000//"},
			callback: "http://localhost:3000/callback"},
		{name: "AUTH0_DOMAIN with HTTPS:// in capitals", env: auth0Env("HTTPS://dev-x.us.auth0.com/"), want: auth0("dev-x.us.auth0.com")},
		{name: "APP_BASE_URL https sets Secure", env: map[string]string{"APP_BASE_URL": "https://localhost:8443/"}, want: func(c *Config) {
			c.BaseURL, c.Secure = "https://localhost:8443", true
		}, callback: "https://localhost:8443/callback"},
		{name: "APP_BASE_URL public with a provider", env: with(auth0Env("dev-x.us.auth0.com"), "APP_BASE_URL", "https://app.example.com/"), want: func(c *Config) {
			c.BaseURL, c.Secure = "https://app.example.com", true
			auth0("dev-x.us.auth0.com")(c)
		}, callback: "https://app.example.com/callback"},
		{name: "APP_BASE_URL loopback IP keeps the dev provider", env: map[string]string{"APP_BASE_URL": "http://127.0.0.1:3000"}, want: func(c *Config) {
			c.BaseURL = "http://127.0.0.1:3000"
		}},
		{name: "Auth0 domain", env: auth0Env("dev-x.us.auth0.com"), want: auth0("dev-x.us.auth0.com")},
		{name: "Auth0 domain with port", env: auth0Env("dev-x.us.auth0.com:8443"), want: auth0("dev-x.us.auth0.com:8443")},
		{name: "Auth0 domain as URL", env: auth0Env("https://dev-x.us.auth0.com/"), want: auth0("dev-x.us.auth0.com")},
		{name: "Auth0 custom domain", env: auth0Env("login.example.com"), want: auth0("login.example.com")},
		{name: "OIDC https issuer", env: oidcEnv("https://accounts.example.com"), want: oidc("https://accounts.example.com")},
		{name: "OIDC issuer kept exactly", env: oidcEnv("https://sso.example.com/realms/app/"), want: oidc("https://sso.example.com/realms/app/")},
		{name: "OIDC http loopback issuer", env: oidcEnv("http://127.0.0.1:9999"), want: oidc("http://127.0.0.1:9999")},
		{name: "OIDC http localhost issuer", env: oidcEnv("http://localhost:8080/realms/dev"), want: oidc("http://localhost:8080/realms/dev")},
		{name: "OIDC_SCOPES", env: map[string]string{"OIDC_SCOPES": "openid  offline_access"}, want: func(c *Config) {
			c.Scopes = []string{"openid", "offline_access"}
		}},
		{name: "SESSION_STORE memory", env: map[string]string{"SESSION_STORE": "memory"}, want: func(c *Config) {
			c.SessionStore = "memory"
		}},
		{name: "SESSION_STORE sqlite path", env: map[string]string{"SESSION_STORE": "sqlite:/var/lib/webapp/sessions.db"}, want: func(c *Config) {
			c.SessionStore = "sqlite:/var/lib/webapp/sessions.db"
		}},
		{name: "durations", env: map[string]string{"SESSION_MAX_AGE": "12h", "SESSION_IDLE_TIMEOUT": "90m", "PROVIDER_TIMEOUT": "3s", "CLOCK_SKEW": "30s"}, want: func(c *Config) {
			c.SessionMaxAge, c.SessionIdle, c.ProviderTimeout, c.ClockSkew = 12*time.Hour, 90*time.Minute, 3*time.Second, 30*time.Second
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Load(getenv(tt.env))
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			want := defaults()
			if tt.want != nil {
				tt.want(&want)
			}
			if !reflect.DeepEqual(checked(got), want) {
				t.Errorf("Load =\n%+v\nwant\n%+v", checked(got), want)
			}
			if tt.callback != "" {
				if cb := got.CallbackURL(); cb != tt.callback {
					t.Errorf("CallbackURL = %q, want %q", cb, tt.callback)
				}
			}
		})
	}
}

func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want []string // every string the error must mention
	}{
		{"form_post over plain http", with(oidcEnv("https://accounts.example.com"), "OIDC_RESPONSE_MODE", "form_post", "APP_BASE_URL", "http://app.example.com"), []string{"OIDC_RESPONSE_MODE", "https"}},
		{"unknown response mode", with(oidcEnv("https://accounts.example.com"), "OIDC_RESPONSE_MODE", "fragment"), []string{"OIDC_RESPONSE_MODE"}},
		{"client key file missing", with(oidcEnv("https://accounts.example.com"), "OIDC_CLIENT_KEY_FILE", "/nonexistent/key.pem"), []string{"OIDC_CLIENT_KEY_FILE"}},
		{"client key file not a key", with(oidcEnv("https://accounts.example.com"), "OIDC_CLIENT_KEY_FILE", "config_test.go"), []string{"OIDC_CLIENT_KEY_FILE"}},
		{"both kinds", with(auth0Env("dev-x.us.auth0.com"), "OIDC_ISSUER", "https://accounts.example.com"),
			[]string{"AUTH0_DOMAIN", "AUTH0_CLIENT_ID", "AUTH0_CLIENT_SECRET", "OIDC_ISSUER"}},
		{"both kinds, partial", map[string]string{"AUTH0_CLIENT_ID": "x", "OIDC_CLIENT_SECRET": "y"},
			[]string{"AUTH0_CLIENT_ID", "OIDC_CLIENT_SECRET"}},
		{"partial Auth0", map[string]string{"AUTH0_DOMAIN": "dev-x.us.auth0.com"},
			[]string{"AUTH0_DOMAIN", "AUTH0_CLIENT_ID", "AUTH0_CLIENT_SECRET"}},
		{"partial Auth0, empty secret", with(auth0Env("dev-x.us.auth0.com"), "AUTH0_CLIENT_SECRET", "  "),
			[]string{"AUTH0_CLIENT_SECRET"}},
		{"partial OIDC", map[string]string{"OIDC_ISSUER": "https://accounts.example.com", "OIDC_CLIENT_ID": "id"},
			[]string{"OIDC_CLIENT_SECRET"}},
		{"dev provider with public APP_BASE_URL", map[string]string{"APP_BASE_URL": "https://app.example.com"},
			[]string{"AUTH0_DOMAIN", "OIDC_ISSUER", "APP_BASE_URL"}},
		{"OIDC_SCOPES without openid", map[string]string{"OIDC_SCOPES": "profile email"}, []string{"OIDC_SCOPES", "openid"}},
		{"OIDC_SCOPES with openid as a substring only", map[string]string{"OIDC_SCOPES": "openid:profile"}, []string{"OIDC_SCOPES"}},
		{"PORT not a number", map[string]string{"PORT": "http"}, []string{"PORT"}},
		{"AUTH0_DOMAIN with an empty port", auth0Env("dev-x.us.auth0.com:"), []string{"AUTH0_DOMAIN"}},
		{"OIDC_ISSUER with credentials", map[string]string{"OIDC_ISSUER": "https://u:p@accounts.example.com", "OIDC_CLIENT_ID": "i", "OIDC_CLIENT_SECRET": "s"}, []string{"OIDC_ISSUER"}},
		{"PORT zero", map[string]string{"PORT": "0"}, []string{"PORT"}},
		{"PORT too large", map[string]string{"PORT": "65536"}, []string{"PORT"}},
		{"PORT negative", map[string]string{"PORT": "-1"}, []string{"PORT"}},
		{"LISTEN_ADDR without port", map[string]string{"LISTEN_ADDR": "127.0.0.1"}, []string{"LISTEN_ADDR"}},
		{"LISTEN_ADDR garbage", map[string]string{"LISTEN_ADDR": "a:b:c"}, []string{"LISTEN_ADDR"}},
		{"dev provider on all interfaces", map[string]string{"LISTEN_ADDR": ":3000"}, []string{"LISTEN_ADDR", "127.0.0.1:3000", "AUTH0_*", "OIDC_*"}},
		{"dev provider on 0.0.0.0", map[string]string{"LISTEN_ADDR": "0.0.0.0:3000"}, []string{"LISTEN_ADDR", "127.0.0.1:3000"}},
		{"dev provider on all IPv6 interfaces", map[string]string{"LISTEN_ADDR": "[::]:3000"}, []string{"LISTEN_ADDR"}},
		{"dev provider on a LAN address", map[string]string{"LISTEN_ADDR": "192.168.1.20:8080"}, []string{"LISTEN_ADDR", "127.0.0.1:8080"}},
		{"dev provider on a host name", map[string]string{"LISTEN_ADDR": "myhost.lan:3000"}, []string{"LISTEN_ADDR"}},
		{"METRICS_ADDR without port", map[string]string{"METRICS_ADDR": "127.0.0.1"}, []string{"METRICS_ADDR", "off"}},
		{"APP_BASE_URL without scheme", map[string]string{"APP_BASE_URL": "localhost:3000"}, []string{"APP_BASE_URL"}},
		{"APP_BASE_URL ftp", map[string]string{"APP_BASE_URL": "ftp://localhost"}, []string{"APP_BASE_URL"}},
		{"APP_BASE_URL with query", map[string]string{"APP_BASE_URL": "http://localhost:3000/?x=1"}, []string{"APP_BASE_URL"}},
		{"APP_BASE_URL with credentials", map[string]string{"APP_BASE_URL": "http://user:pw@localhost:3000"}, []string{"APP_BASE_URL"}},
		{"SESSION_MAX_AGE unparseable", map[string]string{"SESSION_MAX_AGE": "a week"}, []string{"SESSION_MAX_AGE"}},
		{"SESSION_MAX_AGE without unit", map[string]string{"SESSION_MAX_AGE": "3600"}, []string{"SESSION_MAX_AGE"}},
		{"SESSION_IDLE_TIMEOUT unparseable", map[string]string{"SESSION_IDLE_TIMEOUT": "1 day"}, []string{"SESSION_IDLE_TIMEOUT"}},
		{"PROVIDER_TIMEOUT zero", map[string]string{"PROVIDER_TIMEOUT": "0s"}, []string{"PROVIDER_TIMEOUT"}},
		{"CLOCK_SKEW negative", map[string]string{"CLOCK_SKEW": "-1m"}, []string{"CLOCK_SKEW"}},
		{"SESSION_STORE unknown", map[string]string{"SESSION_STORE": "mongodb://localhost"}, []string{"SESSION_STORE"}},
		{"SESSION_STORE redis without host", map[string]string{"SESSION_STORE": "redis://"}, []string{"SESSION_STORE"}},
		{"SESSION_STORE sqlite without path", map[string]string{"SESSION_STORE": "sqlite:"}, []string{"SESSION_STORE"}},
		{"AUTH0_DOMAIN with path", auth0Env("dev-x.us.auth0.com/tenant"), []string{"AUTH0_DOMAIN"}},
		{"AUTH0_DOMAIN with http scheme", auth0Env("http://dev-x.us.auth0.com"), []string{"AUTH0_DOMAIN"}},
		{"OIDC http public issuer", oidcEnv("http://accounts.example.com"), []string{"OIDC_ISSUER", "https"}},
		{"OIDC issuer without scheme", oidcEnv("accounts.example.com"), []string{"OIDC_ISSUER"}},
		{"OIDC issuer ftp", oidcEnv("ftp://accounts.example.com"), []string{"OIDC_ISSUER"}},
		{"OIDC issuer with fragment", oidcEnv("https://accounts.example.com/#x"), []string{"OIDC_ISSUER"}},
		{"several problems at once", map[string]string{
			"PORT":             "0",
			"SESSION_MAX_AGE":  "forever",
			"PROVIDER_TIMEOUT": "-3s",
			"CLOCK_SKEW":       "soon",
			"SESSION_STORE":    "mongodb://x",
			"OIDC_SCOPES":      "profile",
			"AUTH0_DOMAIN":     "dev-x.us.auth0.com",
		}, []string{"PORT", "SESSION_MAX_AGE", "PROVIDER_TIMEOUT", "CLOCK_SKEW", "SESSION_STORE", "OIDC_SCOPES", "AUTH0_CLIENT_ID"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(getenv(tt.env))
			if err == nil {
				t.Fatal("Load succeeded, want an error")
			}
			for _, name := range tt.want {
				if !strings.Contains(err.Error(), name) {
					t.Errorf("error does not mention %s:\n%v", name, err)
				}
			}
		})
	}
}

func TestLoadReportsEachProblemSeparately(t *testing.T) {
	_, err := Load(getenv(map[string]string{
		"PORT":          "0",
		"CLOCK_SKEW":    "soon",
		"SESSION_STORE": "mongodb://x",
		"OIDC_SCOPES":   "profile",
	}))
	joined, ok := err.(interface{ Unwrap() []error })
	if !ok {
		t.Fatalf("error %v does not join its problems", err)
	}
	if n := len(joined.Unwrap()); n != 4 {
		t.Fatalf("got %d problems, want 4:\n%v", n, err)
	}
}

func TestIsLoopback(t *testing.T) {
	tests := []struct {
		host string
		want bool
	}{
		{"localhost", true},
		{"LOCALHOST", true},
		{"127.0.0.1", true},
		{"127.5.6.7", true},
		{"::1", true},
		{"example.com", false},
		{"10.0.0.1", false},
		{"0.0.0.0", false},
		{"localhost.example.com", false},
		{"", false},
		{"::", false},
	}
	for _, tt := range tests {
		if got := IsLoopback(tt.host); got != tt.want {
			t.Errorf("IsLoopback(%q) = %v, want %v", tt.host, got, tt.want)
		}
	}
}

// A problem in one variable is reported once, not again through the
// defaults that derive from it.
func TestLoadDoesNotRepeatProblems(t *testing.T) {
	for _, env := range []map[string]string{{"PORT": "http"}, {"APP_BASE_URL": "localhost:3000"}, {"LISTEN_ADDR": "a:b:c"}} {
		_, err := Load(func(k string) string { return env[k] })
		if err == nil {
			t.Fatalf("%v: no error", env)
		}
		if n := len(strings.Split(err.Error(), "\n")); n != 1 {
			t.Errorf("%v: %d problems reported, want 1:\n%v", env, n, err)
		}
	}
}

// TestClientKeyReplacesTheSecret loads a client key file: the secret may
// then be left out, for OIDC and Auth0 alike.
func TestClientKeyReplacesTheSecret(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKCS8PrivateKey(key)
	file := filepath.Join(t.TempDir(), "key.pem")
	os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600)
	for name, env := range map[string]map[string]string{
		"oidc":  {"OIDC_ISSUER": "https://accounts.example.com", "OIDC_CLIENT_ID": "app", "OIDC_CLIENT_KEY_FILE": file},
		"auth0": {"AUTH0_DOMAIN": "dev-x.us.auth0.com", "AUTH0_CLIENT_ID": "app", "OIDC_CLIENT_KEY_FILE": file},
	} {
		c, err := Load(getenv(env))
		if err != nil {
			t.Fatalf("%s with a key and no secret: %v", name, err)
		}
		if c.ClientKey == nil || c.ClientKeyID == "" || c.ClientSecret != "" {
			t.Errorf("%s: key %v, kid %q, secret %q; want the key, its thumbprint and no secret", name, c.ClientKey != nil, c.ClientKeyID, c.ClientSecret)
		}
	}
}
