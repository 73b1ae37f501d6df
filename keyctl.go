package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"

	cfd "github.com/containerfd/containerfd/libcontainerfd"
	"github.com/containerfd/containerfd/libcontainerfd/keyring"
	"github.com/urfave/cli/v2"
)

// The keyring command takes its action after the container id
// (`keyring ID add TYPE DESCRIPTION --data X`), and its flags anywhere, so
// it parses its own arguments; Flags is there for the help text.
var keyringCommand = &cli.Command{
	Name:  "keyring",
	Usage: "manage a container's own keyring from outside (user and logon keys)",
	UsageText: `containerfd keyring ID add TYPE DESCRIPTION [--data STRING]
containerfd keyring ID add TYPE DESCRIPTION [--from-file FILE]
containerfd keyring ID list [--format table|json]
containerfd keyring ID unlink DESCRIPTION|SERIAL`,
	Description: `A container made without --no-new-keyring has a session keyring of its own,
which its processes possess and other containers' do not. "add" puts a key into
it from outside: TYPE is "user" (the container's processes may read the payload,
e.g. with keyctl(KEYCTL_READ)) or "logon" (only the kernel may, e.g. for
fscrypt or cifs; DESCRIPTION must be "service:name"). The payload comes from
--data, --from-file, or else stdin; a key of the same type and description is
replaced, and the key's serial is printed. "list" shows serial, type and
description, never a payload. "unlink" removes a key, named by serial or
description. Keys go with the container on delete.`,
	SkipFlagParsing: true,
	HideHelpCommand: true,
	Flags: []cli.Flag{
		&cli.StringFlag{Name: "data", Usage: "add: the payload (other processes can see it in ps: prefer stdin or --from-file for secrets)"},
		&cli.StringFlag{Name: "from-file", Usage: "add: read the payload from this file (- for stdin)"},
		&cli.StringFlag{Name: "format", Aliases: []string{"f"}, Value: "table", Usage: "list: table or json"},
	},
	Action: runKeyring,
}

// keyringArgs are the keyring command's arguments, flags taken out.
type keyringArgs struct {
	pos                    []string
	data, fromFile, format *string
}

// parseKeyringArgs takes --data, --from-file and --format (-f) anywhere, as
// --x=v, --x v, -x=v or -x v; "--" ends the flags.
func parseKeyringArgs(args []string) (*keyringArgs, bool, error) {
	a := &keyringArgs{}
	for i := 0; i < len(args); i++ {
		arg := args[i]
		if arg == "--" {
			a.pos = append(a.pos, args[i+1:]...)
			break
		}
		if !strings.HasPrefix(arg, "-") || arg == "-" {
			a.pos = append(a.pos, arg)
			continue
		}
		name, value, hasValue := strings.Cut(strings.TrimLeft(arg, "-"), "=")
		var dst **string
		switch name {
		case "h", "help":
			return nil, true, nil
		case "data":
			dst = &a.data
		case "from-file":
			dst = &a.fromFile
		case "format", "f":
			dst = &a.format
		default:
			return nil, false, fmt.Errorf("keyring: unknown flag %s", arg)
		}
		if !hasValue {
			if i+1 >= len(args) {
				return nil, false, fmt.Errorf("keyring: flag %s needs a value", arg)
			}
			i++
			value = args[i]
		}
		if *dst != nil {
			return nil, false, fmt.Errorf("keyring: flag --%s given twice", name)
		}
		*dst = &value
	}
	return a, false, nil
}

func runKeyring(c *cli.Context) error {
	a, help, err := parseKeyringArgs(c.Args().Slice())
	if help {
		if l := c.Lineage(); len(l) > 1 {
			return cli.ShowCommandHelp(l[1], c.Command.Name)
		}
		return nil
	}
	if err != nil {
		return err
	}
	if len(a.pos) < 2 {
		return fmt.Errorf("keyring: want a container id and add, list or unlink (see containerfd keyring --help)")
	}
	id, verb, rest := a.pos[0], a.pos[1], a.pos[2:]
	if verb != "add" && (a.data != nil || a.fromFile != nil) {
		return fmt.Errorf("keyring %s: --data and --from-file belong to add", verb)
	}
	if verb != "list" && a.format != nil {
		return fmt.Errorf("keyring %s: --format belongs to list", verb)
	}
	switch verb {
	case "add":
		if len(rest) != 2 {
			return fmt.Errorf("keyring add: want TYPE DESCRIPTION, got %d arguments", len(rest))
		}
		// Checked before the payload is read, so a wrong type does not
		// wait for stdin.
		if err := keyring.CheckKey(rest[0], rest[1], []byte{0}); err != nil {
			return err
		}
	case "list":
		if len(rest) != 0 {
			return fmt.Errorf("keyring list: unexpected arguments %q", rest)
		}
		if a.format != nil && *a.format != "table" && *a.format != "json" {
			return fmt.Errorf("invalid --format %q: want table or json", *a.format)
		}
	case "unlink":
		if len(rest) != 1 {
			return fmt.Errorf("keyring unlink: want one DESCRIPTION or SERIAL, got %d arguments", len(rest))
		}
	default:
		return fmt.Errorf("keyring: unknown action %q: want add, list or unlink", verb)
	}

	ctr, err := cfd.Load(stateRoot(c), id)
	if err != nil {
		if errors.Is(err, cfd.ErrNotExist) {
			return notExistError(id)
		}
		return err
	}
	defer ctr.Close()
	switch verb {
	case "add":
		payload, err := keyPayload(a)
		if err != nil {
			return err
		}
		serial, err := ctr.AddKey(rest[0], rest[1], payload)
		if err != nil {
			return err
		}
		fmt.Println(serial)
	case "list":
		keys, err := ctr.Keys()
		if err != nil {
			return err
		}
		if a.format != nil && *a.format == "json" {
			b, err := json.Marshal(keys)
			if err != nil {
				return err
			}
			fmt.Printf("%s\n", b)
			return nil
		}
		w := tabwriter.NewWriter(os.Stdout, 0, 8, 2, ' ', 0)
		fmt.Fprintln(w, "SERIAL\tTYPE\tDESCRIPTION")
		for _, k := range keys {
			typ, desc := k.Type, k.Description
			if typ == "" {
				typ, desc = "?", "(no view permission)"
			}
			fmt.Fprintf(w, "%d\t%s\t%s\n", k.Serial, typ, desc)
		}
		return w.Flush()
	case "unlink":
		return ctr.UnlinkKey(rest[0])
	}
	return nil
}

// keyPayload reads the payload from --data, --from-file or stdin.
func keyPayload(a *keyringArgs) ([]byte, error) {
	switch {
	case a.data != nil && a.fromFile != nil:
		return nil, fmt.Errorf("keyring add: give --data or --from-file, not both")
	case a.data != nil:
		return []byte(*a.data), nil
	}
	r, name := io.Reader(os.Stdin), "stdin"
	if a.fromFile != nil && *a.fromFile != "-" {
		f, err := os.Open(*a.fromFile)
		if err != nil {
			return nil, fmt.Errorf("keyring add: %w", err)
		}
		defer f.Close()
		r, name = f, *a.fromFile
	}
	b, err := io.ReadAll(io.LimitReader(r, keyring.MaxPayload+1))
	if err != nil {
		return nil, fmt.Errorf("keyring add: read %s: %w", name, err)
	}
	if len(b) > keyring.MaxPayload {
		return nil, fmt.Errorf("keyring add: %s holds more than %d bytes", name, keyring.MaxPayload)
	}
	if len(b) == 0 {
		return nil, fmt.Errorf("keyring add: empty payload from %s", name)
	}
	return b, nil
}
