package sessionstore_test

import (
	"testing"
	"time"

	"github.com/gologin/gologin/sessionstore"
	"github.com/gologin/gologin/sessionstore/storetest"
)

func TestMemory(t *testing.T) {
	storetest.Run(t, func(t *testing.T) sessionstore.Store {
		s := sessionstore.NewMemory()
		t.Cleanup(func() { s.Close() })
		return s
	}, storetest.Options{ShortenRevocation: func(s sessionstore.Store, d time.Duration) {
		sessionstore.SetRevokeTTL(s.(*sessionstore.Memory), d)
	}})
}
