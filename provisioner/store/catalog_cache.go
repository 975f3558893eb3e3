package store

import (
	"context"
	"slices"
	"sync"
	"time"
)

// CatalogTTL bounds how long the portal's pages use a catalog read (the
// offered plans, the price list, the billing settings) before reading it
// again. A change made through this store drops the cache at once; a
// change made by another process (a second portal replica) is seen
// within CatalogTTL. Orders, invoices and staff pages never use the cache.
const CatalogTTL = 5 * time.Second

// catalogCache keeps the few rows every customer page reads and staff
// rarely change. gen counts invalidations, so that a read that started
// before a change never stores what it read after it.
type catalogCache struct {
	mu       sync.Mutex
	gen      uint64
	plans    cachedRead[[]Plan]
	prices   cachedRead[[]Price]
	settings cachedRead[BillingSettings]
}

type cachedRead[T any] struct {
	val T
	at  time.Time
	ok  bool
}

// invalidate drops everything cached, after a change to the catalog.
func (c *catalogCache) invalidate() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	c.plans, c.prices, c.settings = cachedRead[[]Plan]{}, cachedRead[[]Price]{}, cachedRead[BillingSettings]{}
}

// cached answers from slot while it is younger than CatalogTTL, else
// reads it with load and keeps it unless the catalog changed meanwhile.
func cached[T any](ctx context.Context, c *catalogCache, slot func() *cachedRead[T], load func(context.Context) (T, error)) (T, error) {
	c.mu.Lock()
	r, gen := *slot(), c.gen
	c.mu.Unlock()
	if r.ok && time.Since(r.at) < CatalogTTL {
		return r.val, nil
	}
	start := time.Now()
	v, err := load(ctx)
	if err != nil {
		return v, err
	}
	c.mu.Lock()
	if c.gen == gen {
		*slot() = cachedRead[T]{val: v, at: start, ok: true}
	}
	c.mu.Unlock()
	return v, nil
}

// OfferedPlans is ListPlans(ctx, true) for pages, cached up to CatalogTTL.
// The caller may change the slice it gets.
func (s *Store) OfferedPlans(ctx context.Context) ([]Plan, error) {
	plans, err := cached(ctx, &s.catalog, func() *cachedRead[[]Plan] { return &s.catalog.plans },
		func(ctx context.Context) ([]Plan, error) { return s.ListPlans(ctx, true) })
	return slices.Clone(plans), err
}

// cachedPrices is Prices for the spend forecast, cached up to CatalogTTL.
func (s *Store) cachedPrices(ctx context.Context) ([]Price, error) {
	prices, err := cached(ctx, &s.catalog, func() *cachedRead[[]Price] { return &s.catalog.prices }, s.Prices)
	return slices.Clone(prices), err
}

// cachedBillingSettings is GetBillingSettings for the spend forecast,
// cached up to CatalogTTL.
func (s *Store) cachedBillingSettings(ctx context.Context) (BillingSettings, error) {
	return cached(ctx, &s.catalog, func() *cachedRead[BillingSettings] { return &s.catalog.settings }, s.GetBillingSettings)
}
