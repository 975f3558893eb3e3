package portal

import (
	"github.com/gofiber/fiber/v2"

	"github.com/fibrixcloud/fibrix/provisioner/store"
	"github.com/fibrixcloud/fibrix/views"
)

// sshKeysView lists the tenant's keys with the key quota. The key quota is
// far below a page, so one page holds them all.
func (s *Server) sshKeysView(c *fiber.Ctx) (views.SSHKeysView, error) {
	ctx := c.UserContext()
	tenantID := who(c).User.Tenant()
	keys, _, err := s.store.ListSSHKeys(ctx, tenantID, store.Page{Number: 1, PerPage: store.MaxPerPage})
	if err != nil {
		return views.SSHKeysView{}, err
	}
	limits, used, err := s.store.QuotaUsage(ctx, tenantID)
	if err != nil {
		return views.SSHKeysView{}, err
	}
	v := views.SSHKeysView{Page: s.page(c, "SSH keys", "ssh-keys"), Used: used.SSHKeys, Limit: limits.SSHKeys}
	for _, k := range keys {
		v.Keys = append(v.Keys, views.SSHKeyRow{ID: k.ID, Name: k.Name, Type: k.Type, Bits: k.Bits, Fingerprint: k.Fingerprint,
			Comment: k.Comment, CreatedAt: k.CreatedAt, AddedBy: k.CreatedBy})
	}
	return v, nil
}

func (s *Server) webSSHKeyList(c *fiber.Ctx) error {
	v, err := s.sshKeysView(c)
	if err != nil {
		return err
	}
	return s.render(c, views.SSHKeys(v))
}
