package portal

import (
	"github.com/fibrixcloud/fibrix/provisioner/store"
)

// planFit tells whether one more VM of plan p can be ordered now: nil, or
// why not. The quota is the customer's own business and is what they can
// change, so its reason wins over missing host capacity. capacity comes
// from store.PlanCapacity; a plan missing from it is not refused for
// capacity.
func planFit(limits, used store.Quota, p store.Plan, capacity map[string]error) error {
	if err := store.FitPlan(limits, used, p); err != nil {
		return err
	}
	return capacity[p.ID]
}
