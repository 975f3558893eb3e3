package capacity

import (
	"slices"
	"sort"
)

// Ledger is a fleet's capacity kept in memory for placement at scale. Each
// host's free resources and free-memory share are worked out once, when the
// host is set or its allocation changes, and the hosts are kept in the
// order of preference of the strategy last asked for, so a decision looks
// at the best hosts first and usually stops at the first one, instead of
// doing the overcommit arithmetic for every host. Best over a Ledger gives
// the same answer as Best over its hosts. A Ledger is not safe for
// concurrent use.
type Ledger struct {
	hosts []Host
	slots []slot // slots[i] is what placement needs of hosts[i]
	index map[string]int

	// order holds indexes into hosts, best first under sortedFor, when
	// ordered; a change of strategy sorts again.
	order     []int
	sortedFor Strategy
	ordered   bool
}

type slot struct {
	free   Resources
	frac   float64 // memoryFraction
	usable bool
}

func slotOf(h *Host) slot {
	f := h.Free()
	return slot{free: f, frac: h.memoryFraction(f), usable: h.Usable()}
}

// NewLedger returns a ledger of a copy of hosts. Later hosts replace
// earlier ones with the same ID.
func NewLedger(hosts []Host) *Ledger {
	l := &Ledger{hosts: make([]Host, 0, len(hosts)), slots: make([]slot, 0, len(hosts)), index: make(map[string]int, len(hosts))}
	for _, h := range hosts {
		l.Set(h)
	}
	return l
}

// Len is the number of hosts in the ledger.
func (l *Ledger) Len() int { return len(l.hosts) }

// Hosts returns the ledger's hosts, in no particular order. The slice is
// the ledger's own: read it, do not keep it across changes.
func (l *Ledger) Hosts() []Host { return l.hosts }

// Host returns the host with the given ID.
func (l *Ledger) Host(id string) (Host, bool) {
	i, ok := l.index[id]
	if !ok {
		return Host{}, false
	}
	return l.hosts[i], true
}

// Set adds h, or replaces the host with its ID.
func (l *Ledger) Set(h Host) {
	if i, ok := l.index[h.ID]; ok {
		from := l.place(i)
		l.hosts[i] = h
		l.slots[i] = slotOf(&l.hosts[i])
		l.move(from, i)
		return
	}
	i := len(l.hosts)
	l.index[h.ID] = i
	l.hosts = append(l.hosts, h)
	l.slots = append(l.slots, slotOf(&l.hosts[i]))
	l.reorder(i)
}

// Remove drops the host with the given ID, if present.
func (l *Ledger) Remove(id string) {
	i, ok := l.index[id]
	if !ok {
		return
	}
	l.unorder(i)
	last := len(l.hosts) - 1
	if i != last {
		if l.ordered {
			l.order[l.position(last)] = i
		}
		l.hosts[i], l.slots[i] = l.hosts[last], l.slots[last]
		l.index[l.hosts[i].ID] = i
	}
	l.hosts[last] = Host{}
	l.hosts, l.slots = l.hosts[:last], l.slots[:last]
	delete(l.index, id)
}

// Allocate adds n to the host's allocation (a negative n gives it back).
// It reports whether the host is in the ledger.
func (l *Ledger) Allocate(id string, n Resources) bool {
	i, ok := l.index[id]
	if !ok {
		return false
	}
	from := l.place(i)
	h := &l.hosts[i]
	h.Allocated = h.Allocated.Plus(n)
	l.slots[i] = slotOf(h)
	l.move(from, i)
	return true
}

// Best returns the host Best would choose among the ledger's hosts for n
// under s; false when none fits (Refuse over Hosts explains why).
func (l *Ledger) Best(n Resources, s Strategy) (Host, bool) {
	if s != Pack {
		s = Spread
	}
	if !l.ordered || l.sortedFor != s {
		l.sort(s)
	}
	for _, i := range l.order {
		if sl := &l.slots[i]; sl.usable && sl.free.holds(n) {
			return l.hosts[i], true
		}
	}
	return Host{}, false
}

// less orders hosts i and j as Best prefers them under sortedFor. Names
// and then IDs break ties, so the order is total.
func (l *Ledger) less(i, j int) bool {
	return before(l.sortedFor, l.slots[i].frac, &l.hosts[i], l.slots[j].frac, &l.hosts[j])
}

func (l *Ledger) sort(s Strategy) {
	l.sortedFor, l.ordered = s, true
	l.order = l.order[:0]
	for i := range l.hosts {
		l.order = append(l.order, i)
	}
	slices.SortFunc(l.order, func(a, b int) int {
		switch {
		case l.less(a, b):
			return -1
		case l.less(b, a):
			return 1
		}
		return 0
	})
}

// position finds host i in order, by the figures it was placed there with.
func (l *Ledger) position(i int) int {
	k, _ := slices.BinarySearchFunc(l.order, i, func(o, i int) int {
		switch {
		case o == i:
			return 0
		case l.less(o, i):
			return -1
		}
		return 1
	})
	return k
}

// unorder takes host i out of order before its figures change.
func (l *Ledger) unorder(i int) {
	if l.ordered {
		l.order = slices.Delete(l.order, l.position(i), l.position(i)+1)
	}
}

// place is host i's position in order before its figures change, for
// move; -1 when the ledger keeps no order.
func (l *Ledger) place(i int) int {
	if !l.ordered {
		return -1
	}
	return l.position(i)
}

// move puts host i, found at position from before its figures changed,
// where its new figures belong, shifting only the hosts it passes: taking
// it out and inserting it again would shift every host behind it twice,
// which at 10,000 hosts was most of a decision's time in the ledger.
func (l *Ledger) move(from, i int) {
	if from < 0 {
		return
	}
	o := l.order
	switch {
	case from+1 < len(o) && l.less(o[from+1], i):
		rest := o[from+1:]
		k := sort.Search(len(rest), func(j int) bool { return !l.less(rest[j], i) })
		copy(o[from:], rest[:k])
		o[from+k] = i
	case from > 0 && l.less(i, o[from-1]):
		k := sort.Search(from, func(j int) bool { return l.less(i, o[j]) })
		copy(o[k+1:], o[k:from])
		o[k] = i
	}
}

// reorder puts host i back into order after its figures changed.
func (l *Ledger) reorder(i int) {
	if l.ordered {
		l.order = slices.Insert(l.order, l.position(i), i)
	}
}

// Plus returns r + o.
func (r Resources) Plus(o Resources) Resources {
	return Resources{VCPUs: r.VCPUs + o.VCPUs, MemoryMiB: r.MemoryMiB + o.MemoryMiB, DiskGiB: r.DiskGiB + o.DiskGiB}
}

// Minus returns r − o.
func (r Resources) Minus(o Resources) Resources {
	return Resources{VCPUs: r.VCPUs - o.VCPUs, MemoryMiB: r.MemoryMiB - o.MemoryMiB, DiskGiB: r.DiskGiB - o.DiskGiB}
}
