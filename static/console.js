// The VM console page: an xterm.js terminal joined to the VM's serial
// console over a WebSocket. Keystrokes go out as they are typed; the
// guest's output is written as it comes.
(function () {
	var el = document.getElementById("console-terminal");
	if (!el || !window.Terminal) {
		return;
	}
	var status = document.getElementById("console-status");
	function say(text) {
		if (status) {
			status.textContent = text;
		}
	}
	var term = new window.Terminal({ cols: 80, rows: 25, cursorBlink: true, scrollback: 2000 });
	term.open(el);
	// The browser test reads what the terminal shows from here.
	window.fibrixConsole = term;
	var scheme = location.protocol === "https:" ? "wss://" : "ws://";
	var ws = new WebSocket(scheme + location.host + el.getAttribute("data-ws"));
	ws.binaryType = "arraybuffer";
	ws.onopen = function () {
		say("Connected. Press Enter if the login prompt does not show.");
		term.focus();
	};
	ws.onmessage = function (ev) {
		term.write(typeof ev.data === "string" ? ev.data : new Uint8Array(ev.data));
	};
	ws.onclose = function (ev) {
		say("Disconnected" + (ev.reason ? ": " + ev.reason : ". Reload the page to connect again."));
	};
	var enc = new TextEncoder();
	term.onData(function (d) {
		if (ws.readyState === WebSocket.OPEN) {
			ws.send(enc.encode(d));
		}
	});
})();
