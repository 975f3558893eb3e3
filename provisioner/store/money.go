package store

import (
	"fmt"
	"strconv"
	"strings"
)

// Money is an amount in the currency's minor unit (cents): never a float.
type Money struct {
	Minor    int64
	Currency string
}

// Currencies the storefront bills in; all have two decimals.
var currencySymbols = map[string]string{
	"EUR": "€", "USD": "$", "GBP": "£", "CHF": "CHF ", "SEK": "SEK ", "NOK": "NOK ",
	"DKK": "DKK ", "PLN": "PLN ", "CZK": "CZK ", "HUF": "HUF ", "RON": "RON ", "CAD": "CA$", "AUD": "A$",
}

// ValidCurrency tells whether the storefront can bill in code.
func ValidCurrency(code string) bool { _, ok := currencySymbols[code]; return ok }

// String formats m as customers read it: "€4.00", "€-12.40", "CHF 1.05".
func (m Money) String() string {
	sym, ok := currencySymbols[m.Currency]
	if !ok {
		sym = m.Currency + " "
	}
	sign, v := "", m.Minor
	if v < 0 {
		sign, v = "-", -v
	}
	return fmt.Sprintf("%s%s%d.%02d", sym, sign, v/100, v%100)
}

// Decimal is the amount as a plain decimal string ("-12.40"), for CSV
// and JSON.
func (m Money) Decimal() string {
	sign, v := "", m.Minor
	if v < 0 {
		sign, v = "-", -v
	}
	return fmt.Sprintf("%s%d.%02d", sign, v/100, v%100)
}

// microsPerMinor: hourly rates are kept in millionths of the currency
// unit, so €0.0060 an hour is exact; amounts are in hundredths.
const microsPerMinor = 10000

// divRound divides and rounds half away from zero: the one rounding rule
// of the storefront.
func divRound(n, d int64) int64 {
	if d <= 0 {
		panic("divRound: divisor must be positive")
	}
	if n < 0 {
		return -((-n + d/2) / d)
	}
	return (n + d/2) / d
}

// LineAmount is what hours of one resource at one price cost: hours times
// the hourly rate, rounded to the cent, and never more than the monthly cap
// (0: no cap).
func LineAmount(hours, hourlyMicros, monthlyCapMinor int64) int64 {
	v := divRound(hours*hourlyMicros, microsPerMinor)
	if monthlyCapMinor > 0 {
		v = min(v, monthlyCapMinor)
	}
	return v
}

// VATAmount is the VAT on a subtotal at bp basis points, rounded once on
// the invoice total (lines carry no VAT of their own).
func VATAmount(subtotalMinor int64, bp int) int64 {
	return divRound(subtotalMinor*int64(bp), 10000)
}

// ParseAmount reads a decimal amount in the currency unit ("4", "4.5",
// "-12.40") into minor units; more than two decimals is an error.
func ParseAmount(s string) (int64, error) {
	return parseFixed(s, 2)
}

// ParseRate reads an hourly rate in the currency unit ("0.006") into
// millionths; more than six decimals is an error.
func ParseRate(s string) (int64, error) {
	return parseFixed(s, 6)
}

func parseFixed(s string, decimals int) (int64, error) {
	s = strings.TrimSpace(s)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	whole, frac, _ := strings.Cut(s, ".")
	if whole == "" && frac == "" || len(frac) > decimals || strings.ContainsAny(whole+frac, "+-") || len(whole) > 12 {
		return 0, fmt.Errorf("%q is not an amount with at most %d decimals", s, decimals)
	}
	if whole == "" {
		whole = "0"
	}
	w, err := strconv.ParseInt(whole, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%q is not an amount with at most %d decimals", s, decimals)
	}
	f := int64(0)
	if frac != "" {
		if f, err = strconv.ParseInt(frac+strings.Repeat("0", decimals-len(frac)), 10, 64); err != nil {
			return 0, fmt.Errorf("%q is not an amount with at most %d decimals", s, decimals)
		}
	}
	scale := int64(1)
	for range decimals {
		scale *= 10
	}
	v := w*scale + f
	if neg {
		v = -v
	}
	return v, nil
}

// RateDecimal shows an hourly rate in millionths as a decimal with as many
// places as it needs, at least two: "0.006".
func RateDecimal(micros int64) string {
	sign := ""
	if micros < 0 {
		sign, micros = "-", -micros
	}
	frac := strings.TrimRight(fmt.Sprintf("%06d", micros%1000000), "0")
	for len(frac) < 2 {
		frac += "0"
	}
	return fmt.Sprintf("%s%d.%s", sign, micros/1000000, frac)
}

// FormatRate shows an hourly rate in millionths as a currency amount:
// "€0.006".
func FormatRate(micros int64, currency string) string {
	sym, ok := currencySymbols[currency]
	if !ok {
		sym = currency + " "
	}
	return sym + RateDecimal(micros)
}
