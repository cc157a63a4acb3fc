package config

import (
	"net"
	"os"
	"strconv"
)

// SSH configures the optional SSH server that serves the monitor to
// `ssh -p PORT host` (package sshui). Off while Addr is empty.
type SSH struct {
	// Addr is host:port to listen on; a port alone (":2222") binds
	// loopback, like http.addr.
	Addr string `json:"addr"`
	// AuthorizedKeys is an OpenSSH authorized_keys file: keys with full
	// control (pause, resume, reconnect). Reloaded when it changes.
	AuthorizedKeys string `json:"authorized_keys"`
	// HostKey is the server's private key (OpenSSH or PEM). Empty: one
	// ed25519 key is generated once under <out>/.mailtap/.
	HostKey string `json:"host_key"`
	// ReadOnlyKeys is an authorized_keys file of keys that see everything
	// but cannot pause, resume or reconnect.
	ReadOnlyKeys string `json:"read_only_keys"`
}

// sshVars apply in env-only mode and on top of a config file, for Docker.
var sshVars = []envVar{
	{"MAILTAP_SSH", "ssh.addr", func(c *Config, v string) error { c.SSH.Addr = v; return nil }},
	{"MAILTAP_SSH_AUTHORIZED_KEYS", "ssh.authorized_keys", func(c *Config, v string) error { c.SSH.AuthorizedKeys = v; return nil }},
}

func sshFieldString(c *Config, field string) string {
	switch field {
	case "ssh.addr":
		return c.SSH.Addr
	case "ssh.authorized_keys":
		return c.SSH.AuthorizedKeys
	}
	return ""
}

func (v *validator) ssh() {
	s := &v.c.SSH
	if s.Addr == "" {
		return
	}
	_, port, err := net.SplitHostPort(s.Addr)
	if err != nil {
		v.add("ssh.addr", "must be host:port or :port, like :2222 or 0.0.0.0:2222 (got %q)", s.Addr)
	} else if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		v.add("ssh.addr", "port must be a number 0..65535 (got %q)", s.Addr)
	}
	if s.AuthorizedKeys == "" && s.ReadOnlyKeys == "" {
		// Without keys nobody could log in; refusing is clearer than a
		// server that rejects everyone.
		v.add("ssh.authorized_keys", "is required when ssh.addr is set: give an OpenSSH authorized_keys file "+
			"(or ssh.read_only_keys), e.g. MAILTAP_SSH_AUTHORIZED_KEYS=/etc/mailtap/authorized_keys")
	}
	for _, f := range []struct{ field, path string }{
		{"ssh.authorized_keys", s.AuthorizedKeys}, {"ssh.read_only_keys", s.ReadOnlyKeys}, {"ssh.host_key", s.HostKey},
	} {
		if f.path == "" {
			continue
		}
		st, err := os.Stat(f.path)
		switch {
		case err != nil:
			v.add(f.field, "cannot read %q: %v", f.path, unwrapPathError(err))
		case st.IsDir():
			v.add(f.field, "%q is a directory, not a file", f.path)
		}
	}
}
