package portal

import (
	"fmt"
	"io"
	"strings"

	"codeberg.org/go-pdf/fpdf"

	"github.com/fibrixcloud/fibrix/provisioner/store"
)

// renderInvoicePDF writes an invoice or credit note as an A4 PDF with the
// core Helvetica font (Windows-1252: €, ×, accented Latin letters).
func renderInvoicePDF(w io.Writer, inv store.Invoice, portalURL string) error {
	pdf := fpdf.New("P", "mm", "A4", "")
	pdf.SetTitle(inv.Number, true)
	pdf.SetCreator("Fibrix Cloud", true)
	pdf.SetMargins(20, 20, 20)
	pdf.SetAutoPageBreak(true, 20)
	tr := pdf.UnicodeTranslatorFromDescriptor("")
	text := func(s string) string { return tr(strings.ReplaceAll(s, "→", "->")) }
	pdf.AddPage()

	title := "Invoice"
	if inv.Kind == store.CreditNoteKind {
		title = "Credit note"
	}
	pdf.SetFont("Helvetica", "B", 18)
	pdf.CellFormat(0, 10, text(title+" "+inv.Number), "", 1, "L", false, 0, "")
	pdf.SetFont("Helvetica", "", 10)
	for _, l := range []string{
		"Fibrix Cloud - " + portalURL,
		"Billed to: " + inv.TenantName,
		"Period: " + inv.Month,
		"Issued: " + inv.IssuedAt.UTC().Format("2 January 2006"),
	} {
		pdf.CellFormat(0, 6, text(l), "", 1, "L", false, 0, "")
	}
	if inv.Reason != "" {
		pdf.MultiCell(0, 6, text("Reason: "+inv.Reason), "", "L", false)
	}
	pdf.Ln(6)

	pdf.SetFont("Helvetica", "B", 10)
	pdf.SetFillColor(235, 235, 235)
	pdf.CellFormat(140, 8, text("Description"), "B", 0, "L", true, 0, "")
	pdf.CellFormat(30, 8, text("Amount"), "B", 1, "R", true, 0, "")
	pdf.SetFont("Helvetica", "", 9)
	for _, l := range inv.Lines {
		y := pdf.GetY()
		pdf.MultiCell(140, 6, text(l.Description), "", "L", false)
		end := pdf.GetY()
		pdf.SetXY(160, y)
		pdf.CellFormat(30, 6, text(store.Money{Minor: l.AmountMinor, Currency: inv.Currency}.String()), "", 0, "R", false, 0, "")
		pdf.SetY(end)
	}
	pdf.Ln(2)
	pdf.SetFont("Helvetica", "", 10)
	row := func(label, amount string, bold bool) {
		if bold {
			pdf.SetFont("Helvetica", "B", 11)
		}
		pdf.CellFormat(140, 7, text(label), "T", 0, "R", false, 0, "")
		pdf.CellFormat(30, 7, text(amount), "T", 1, "R", false, 0, "")
	}
	row("Subtotal", inv.Subtotal().String(), false)
	row(fmt.Sprintf("VAT %s %%", vatRate(inv.VATBP)), inv.VAT().String(), false)
	row("Total", inv.Total().String(), true)
	pdf.Ln(8)
	pdf.SetFont("Helvetica", "", 8)
	pdf.MultiCell(0, 4, text("Amounts per line are hours times the hourly rate, rounded to the cent and never more than the plan's monthly price; VAT is computed once on the subtotal."), "", "L", false)
	if err := pdf.Error(); err != nil {
		return fmt.Errorf("render invoice %s: %w", inv.Number, err)
	}
	return pdf.Output(w)
}
