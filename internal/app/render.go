package app

import (
	"bytes"
	"embed"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"sync"

	"github.com/gologin/gologin/internal/config"
	"github.com/gologin/gologin/login"
	"github.com/gologin/gologin/sessionstore/storeurl"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticRoot embed.FS

var staticFS, _ = fs.Sub(staticRoot, "static")

// pages holds one template set per page, each with the shared layout.
var pages = func() map[string]*template.Template {
	m := make(map[string]*template.Template)
	for _, name := range []string{"index", "profile", "logout", "error", "userinfo", "signin"} {
		m[name] = template.Must(template.ParseFS(templateFS, "templates/layout.html", "templates/"+name+".html"))
	}
	return m
}()

// pageData is what every page template sees.
type pageData struct {
	User      login.User
	SignedIn  bool
	CSRFToken string
	DevIdP    bool
	// Prefix starts the paths of the app's own pages: empty, or the
	// gateway's GATEWAY_PREFIX.
	Prefix string
	// LoginPath is where guests go to sign in: the provider, or the page
	// that lists them.
	LoginPath string
	// Gateway is set when the app protects an upstream, whose home is /.
	Gateway bool
	Data    any
}

var pageHeaders = []header{
	{"Content-Type", []string{"text/html; charset=utf-8"}},
	{"Cache-Control", []string{"no-store"}},
}

// renderBuffers hold pages while they render, so that a template error
// can still become an error page; reused, they have grown to page size.
var renderBuffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// render writes a page. Pages show the user's data, so no cache keeps them.
func (a *App) render(w http.ResponseWriter, r *http.Request, status int, name string, data any) {
	pd := pageData{DevIdP: a.cfg.Provider == config.Dev, Prefix: a.cfg.Prefix(), LoginPath: a.auth.LoginURL(""), Gateway: a.gateway != nil, Data: data}
	if r.Context().Value(noSessionKey) == nil {
		pd.User, pd.SignedIn = a.auth.User(r)
	}
	if pd.SignedIn {
		pd.CSRFToken = a.auth.CSRFToken(r)
	}
	buf := renderBuffers.Get().(*bytes.Buffer)
	defer func() {
		// A page with huge claims would otherwise pin its buffer.
		if buf.Cap() <= 64<<10 {
			buf.Reset()
			renderBuffers.Put(buf)
		}
	}()
	if err := pages[name].ExecuteTemplate(buf, "layout", pd); err != nil {
		a.log.ErrorContext(r.Context(), "rendering page failed", "page", name, "error", err)
		http.Error(w, "Internal Server Error", http.StatusInternalServerError)
		return
	}
	setHeaders(w.Header(), pageHeaders)
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// errorPage is the error template's data.
type errorPage struct {
	Status         int
	Title, Message string
	Retry          bool
	Reference      string
}

// renderError is the one place errors become pages: the user sees the
// status, a plain message and a reference ID; the cause goes to the log
// under the same ID.
func (a *App) renderError(w http.ResponseWriter, r *http.Request, err error) {
	e := asPageError(err)
	ref := requestIDFrom(r.Context())
	level := slog.LevelInfo
	if e.Status >= 500 {
		level = slog.LevelError
	}
	args := []any{"status", e.Status, "title", e.Title, "path", r.URL.Path}
	if e.Reason != "" {
		args = append(args, "reason", e.Reason)
	}
	if e.Err != nil {
		args = append(args, "error", e.Err)
	}
	a.log.Log(r.Context(), level, "request failed", args...)
	a.render(w, r, e.Status, "error", errorPage{Status: e.Status, Title: e.Title, Message: e.Message, Retry: e.Retry, Reference: ref})
}

func (a *App) storeKind() string { return storeurl.Describe(a.cfg.SessionStore) }
