package portal

import (
	"errors"

	"github.com/gofiber/fiber/v2"

	"github.com/fibrixcloud/fibrix/provisioner/inventory"
	"github.com/fibrixcloud/fibrix/provisioner/store"
)

// apiAgentDeploy tells a deploying machine's agent what to write: the image,
// the disk and the cloud-init seed. Like the report, it is authenticated by
// the one-time token alone; fetching the plan does not spend it.
func (s *Server) apiAgentDeploy(c *fiber.Ctx) error {
	p, err := s.store.AgentDeployPlan(c.UserContext(), c.Query("token"))
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return errNotFound("agent token")
		}
		return err
	}
	plan := inventory.DeployPlan{ImageURL: p.ImageURL, SHA256: p.SHA256, Disk: p.Disk, InstanceID: p.InstanceID, Hostname: p.Hostname, SSHKeys: p.SSHKeys}
	if err := inventory.ValidatePlan(plan); err != nil {
		s.logger(c).Error("deploy plan is not valid", "machine", p.MachineID, "err", err)
		return &httpError{status: fiber.StatusConflict, code: "invalid_plan", message: "the deploy plan cannot be served: " + err.Error()}
	}
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.JSON(plan)
}
