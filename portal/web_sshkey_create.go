package portal

import (
	"fmt"
	"io"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/fibrixcloud/fibrix/provisioner/sshkey"
	"github.com/fibrixcloud/fibrix/provisioner/store"
	"github.com/fibrixcloud/fibrix/views"
)

// webSSHKeyCreate adds a key pasted into public_key or uploaded as key_file.
func (s *Server) webSSHKeyCreate(c *fiber.Ctx) error {
	name, pasted := c.FormValue("name"), c.FormValue("public_key")
	input, fromFile, err := keyInput(c, pasted)
	var k store.SSHKey
	if err == nil {
		k, err = s.store.AddSSHKey(c.UserContext(), s.actor(c), who(c).User.Tenant(), name, input)
	}
	if err == nil {
		return s.redirect(c, "/ssh-keys", "success", "Key "+k.Name+" added ("+k.Fingerprint+").")
	}
	errs, err := formFailure(c, err, "name", "public_key", "key_file")
	if err != nil {
		return err
	}
	if msg, ok := errs["public_key"]; ok && fromFile {
		// The message is about the uploaded file, so show it there.
		delete(errs, "public_key")
		errs["key_file"] = msg
	}
	v, err := s.sshKeysView(c)
	if err != nil {
		return err
	}
	v.Errors, v.Name = errs, name
	// Never echo something that looks like a private key back into the page.
	if !strings.Contains(pasted, "PRIVATE KEY") {
		v.PublicKey = pasted
	}
	return s.render(c, views.SSHKeys(v))
}

// keyInput picks the pasted key or the uploaded file; an upload is read only
// up to one byte past the limit, so a huge file costs nothing.
func keyInput(c *fiber.Ctx, pasted string) (input string, fromFile bool, err error) {
	if !strings.HasPrefix(string(c.Request().Header.ContentType()), fiber.MIMEMultipartForm) {
		return pasted, false, nil
	}
	form, err := c.MultipartForm()
	if err != nil {
		return "", false, errBadRequest("the form upload could not be read")
	}
	files := form.File["key_file"]
	if len(files) == 0 || files[0].Size == 0 {
		// A file input left empty still sends an empty part.
		return pasted, false, nil
	}
	fh := files[0]
	if strings.TrimSpace(pasted) != "" {
		return "", true, store.E(store.ErrInvalid, "key_file", "paste the key or upload its file, not both")
	}
	tooBig := store.E(store.ErrInvalid, "key_file", fmt.Sprintf("the file is larger than %d KiB; a public key is one short line from a .pub file", sshkey.MaxInput>>10))
	if fh.Size > sshkey.MaxInput {
		return "", true, tooBig
	}
	f, err := fh.Open()
	if err != nil {
		return "", true, fmt.Errorf("open uploaded key: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, sshkey.MaxInput+1))
	if err != nil {
		return "", true, fmt.Errorf("read uploaded key: %w", err)
	}
	if len(b) > sshkey.MaxInput {
		return "", true, tooBig
	}
	return string(b), true, nil
}
