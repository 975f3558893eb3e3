// The portal's own script: small touches on top of plain forms, which all
// work without it.
document.addEventListener("change", function (ev) {
	var input = ev.target;
	if (!input.matches || !input.matches('input[type="radio"][name="plan"]')) {
		return;
	}
	// The order form's total follows the chosen plan.
	var card = input.closest("[data-total]");
	var out = document.getElementById("order-total");
	if (card && out) {
		out.textContent = card.getAttribute("data-total") || "not priced yet";
	}
	document.querySelectorAll(".plan-card").forEach(function (c) {
		c.classList.toggle("plan-selected", c.contains(input));
	});
});
