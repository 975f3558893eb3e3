package store

import "context"

// PowerClaimCount counts the power claims held on a machine's jobs.
func PowerClaimCount(ctx context.Context, s *Store, machineID string) (int64, error) {
	var n int64
	err := s.db.WithContext(ctx).Model(&powerClaim{}).Where("machine_id = ?", machineID).Count(&n).Error
	return n, err
}
