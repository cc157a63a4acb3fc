package sshui

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"

	gossh "golang.org/x/crypto/ssh"
)

// HostKeyName is the generated host key's file name under the state dir
// (<out>/.mailtap/).
const HostKeyName = "ssh_host_ed25519_key"

// loadHostKey reads path (ssh.host_key), or, when path is empty, the key
// generated once under stateDir, generating it on the first start.
func loadHostKey(path, stateDir string, log *slog.Logger) (gossh.Signer, error) {
	if path != "" {
		return readHostKey(path, "ssh.host_key")
	}
	if stateDir == "" {
		return nil, errors.New("ssh: no host key: set ssh.host_key, or give a state dir to generate one in")
	}
	path = filepath.Join(stateDir, HostKeyName)
	s, err := readHostKey(path, "generated host key")
	if !errors.Is(err, fs.ErrNotExist) {
		return s, err
	}
	if err := generateHostKey(path); err != nil {
		return nil, err
	}
	log.Info("ssh: generated a host key", "path", path)
	return readHostKey(path, "generated host key")
}

func readHostKey(path, what string) (gossh.Signer, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("ssh: %s: %w", what, err)
	}
	s, err := gossh.ParsePrivateKey(data)
	if err != nil {
		var pp *gossh.PassphraseMissingError
		if errors.As(err, &pp) {
			return nil, fmt.Errorf("ssh: %s %s is encrypted: give a key without a passphrase (ssh-keygen -p -N '' -f %s)", what, path, path)
		}
		return nil, fmt.Errorf("ssh: %s %s: not an OpenSSH or PEM private key: %w", what, path, err)
	}
	return s, nil
}

// generateHostKey writes a new ed25519 key in OpenSSH format, mode 0600.
// It is written to a temp file and linked into place, so a crash leaves
// either no key or a whole one, and two starts never overwrite each other
// (the output dir's lock makes that impossible anyway).
func generateHostKey(path string) error {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return fmt.Errorf("ssh: generate host key: %w", err)
	}
	block, err := gossh.MarshalPrivateKey(priv, "mailtap host key")
	if err != nil {
		return fmt.Errorf("ssh: encode host key: %w", err)
	}
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, ".ssh_host_key-*")
	if err != nil {
		return fmt.Errorf("ssh: write host key: %w", err)
	}
	defer os.Remove(tmp.Name())
	// CreateTemp makes the file 0600 already; say so for umask-proof clarity.
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("ssh: write host key: %w", err)
	}
	if _, err := tmp.Write(pem.EncodeToMemory(block)); err != nil {
		tmp.Close()
		return fmt.Errorf("ssh: write host key: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("ssh: write host key: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("ssh: write host key: %w", err)
	}
	if err := os.Link(tmp.Name(), path); err != nil {
		return fmt.Errorf("ssh: write host key: %w", err)
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}
