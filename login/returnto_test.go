package login

import "testing"

func TestSafeReturnTo(t *testing.T) {
	tests := []struct {
		in string
		ok bool
	}{
		{"/", true},
		{"/profile", true},
		{"/a/b?c=d&e=%2F#frag", true},
		{"/caf%C3%A9", true},
		{"", false},
		{"profile", false},
		{"//evil.example", false},
		{"/\\evil.example", false},
		{"\\\\evil.example", false},
		{"https://evil.example/", false},
		{"javascript:alert(1)", false},
		{"/%2F%2Fevil.example", false},
		{"/%2fevil.example", false},
		{"/%5Cevil.example", false},
		{"/\t/evil.example", false},
		{"/\n/evil.example", false},
		{"/ok\r\nSet-Cookie: x=y", false},
		{"/%zz", false},
	}
	for _, tt := range tests {
		got, ok := SafeReturnTo(tt.in)
		if ok != tt.ok || (ok && got != tt.in) {
			t.Errorf("SafeReturnTo(%q) = %q, %v; want ok=%v", tt.in, got, ok, tt.ok)
		}
	}
}
