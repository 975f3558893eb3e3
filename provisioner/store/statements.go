package store

import (
	"gorm.io/gorm"
)

// OnStatement calls f with the SQL of every statement the store runs from
// now on (queries, counts, raw reads, inserts, updates, deletes), after it
// ran. Tests use it to pin how many statements a request takes, so an N+1
// cannot creep back; f must be safe for concurrent use. Set it before the
// store is used concurrently.
func (s *Store) OnStatement(f func(sql string)) error {
	cb := func(db *gorm.DB) { f(db.Statement.SQL.String()) }
	c := s.db.Callback()
	for _, err := range []error{
		c.Query().After("gorm:query").Register("fibrix:statement", cb),
		c.Row().After("gorm:row").Register("fibrix:statement", cb),
		c.Raw().After("gorm:raw").Register("fibrix:statement", cb),
		c.Create().After("gorm:create").Register("fibrix:statement", cb),
		c.Update().After("gorm:update").Register("fibrix:statement", cb),
		c.Delete().After("gorm:delete").Register("fibrix:statement", cb),
	} {
		if err != nil {
			return err
		}
	}
	return nil
}
