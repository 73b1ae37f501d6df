package libcontainerfd

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/containerfd/containerfd/libcontainerfd/keyreq"
)

// checkKeyHandler tells whether cfg's KeyHandler can be honoured: key
// requests are routed by the container's own session keyring, through a
// root-only table and the kernel's upcall, which runs as root.
func checkKeyHandler(cfg *Config) error {
	if cfg.KeyHandler == "" {
		if cfg.KeyHandlerTimeout != 0 {
			return fmt.Errorf("KeyHandlerTimeout (--key-handler-timeout) without KeyHandler (--key-handler)")
		}
		return nil
	}
	if cfg.NoNewKeyring {
		return fmt.Errorf("KeyHandler (--key-handler): key requests are told apart by the container's own session keyring, which NoNewKeyring (--no-new-keyring) leaves out")
	}
	if cfg.Rootless || os.Geteuid() != 0 {
		return fmt.Errorf("KeyHandler (--key-handler): only root can answer a container's key requests (the kernel's upcall runs as root in the host's namespaces)")
	}
	if err := keyreq.Validate(cfg.KeyHandler, cfg.KeyHandlerTimeout); err != nil {
		return fmt.Errorf("KeyHandler: %w", err)
	}
	if err := keyreq.CheckHost(); err != nil {
		return fmt.Errorf("KeyHandler: %w", err)
	}
	return nil
}

// registerKeyHandler puts the container's keyring, made by ForkInit and
// saved in the state, into keyreq's table.
func (c *Container) registerKeyHandler() error {
	return keyreq.Register(c.st.KeyringSerial, keyreq.Entry{
		ID:      c.id,
		Root:    filepath.Dir(c.dir),
		Keyring: c.st.Keyring,
		Handler: c.cfg.KeyHandler,
		Timeout: c.cfg.KeyHandlerTimeout,
	})
}

// unregisterKeyHandler removes the container's entry from keyreq's table,
// unless its serial now names another container's keyring.
func (c *Container) unregisterKeyHandler() error {
	serial := c.st.KeyringSerial
	if c.st.KeyHandler == "" || serial == 0 {
		return nil
	}
	e, err := keyreq.Lookup(serial)
	if err == nil && e != nil && e.Keyring == c.st.Keyring {
		err = keyreq.Unregister(serial)
	}
	if err != nil {
		return fmt.Errorf("container %s: %w", c.id, err)
	}
	return nil
}
