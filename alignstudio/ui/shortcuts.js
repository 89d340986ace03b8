// Keyboard shortcuts for the labeling tabs, and their help ("?"). A key clicks the button with that elem_id when the
// button is visible and the focus is not in a text field (typing a reason must not label a pair).
(() => {
  const keys = {
    "1": "label-left-better", "2": "label-right-better", "3": "label-tie", "4": "label-both-bad",
    "s": "label-skip", "z": "label-undo",
    "+": "feedback-up", "=": "feedback-up", "-": "feedback-down", "k": "feedback-skip", "u": "feedback-undo",
  };
  // Shift+1 / Shift+2: "much better". By physical key (event.code): Shift+1 types "!" on a US layout, other
  // characters elsewhere.
  const shifted = {"Digit1": "label-left-much", "Digit2": "label-right-much"};
  // A verdict (or skip) within this many ms of the previous one is a double press, not a decision: the next
  // item can be on screen a few ms after a label (it comes from the prefetched buffer), far too soon to have
  // been read, so the second press would judge an item nobody saw. Undo is left out: it judges nothing.
  const REPEAT_MS = 300;
  const verdicts = new Set(["label-left-better", "label-right-better", "label-tie", "label-both-bad", "label-skip",
                            "label-left-much", "label-right-much", "label-left-slight", "label-right-slight",
                            "feedback-up", "feedback-down", "feedback-skip"]);
  let last = -Infinity;
  // capture phase: runs before the button's own handler, for a click and for a key's click alike
  document.addEventListener("click", (event) => {
    const button = event.target && event.target.closest && event.target.closest("button[id]");
    if (!button || !verdicts.has(button.id)) return;
    const now = performance.now();
    if (now - last < REPEAT_MS) {
      event.stopImmediatePropagation();
      event.preventDefault();
      return;
    }
    last = now;
  }, true);
  // "?" shows the keys (Escape or "?" again hides them). Static text, set as textContent: nothing to escape.
  const HELP = [
    ["Label tab", ""], ["1", "A is better"], ["2", "B is better"],
    ["Shift+1", "A is much better"], ["Shift+2", "B is much better"], ["3", "tie"], ["4", "both bad"],
    ["s", "skip"], ["z", "undo last"],
    ["Feedback tab", ""], ["+", "good"], ["-", "bad"], ["k", "skip"], ["u", "undo last"],
    ["Both tabs", ""], ["g", "show or hide the labeling guidelines"],
    ["?", "show or hide this help"],
  ];
  const toggleHelp = (show) => {
    let panel = document.getElementById("key-help");
    if (!panel) {
      panel = document.createElement("div");
      panel.id = "key-help";
      panel.setAttribute("role", "dialog");
      panel.setAttribute("aria-label", "Keyboard shortcuts");
      panel.style.cssText = "position:fixed;right:16px;bottom:16px;z-index:1000;padding:12px 16px;" +
        "background:var(--background-fill-primary,#fff);color:var(--body-text-color,#111);" +
        "border:1px solid var(--border-color-primary,#ccc);border-radius:8px;box-shadow:0 4px 16px rgba(0,0,0,.2);" +
        "font-size:14px;max-width:calc(100vw - 32px)";
      const title = document.createElement("strong");
      title.textContent = "Keyboard shortcuts (not while typing in a box)";
      panel.appendChild(title);
      for (const [key, what] of HELP) {
        const line = document.createElement("div");
        if (!what) {
          line.style.marginTop = "6px";
          line.style.fontWeight = "600";
          line.textContent = key;
        } else {
          const kbd = document.createElement("kbd");
          kbd.textContent = key;
          kbd.style.cssText = "display:inline-block;min-width:1.6em;text-align:center;margin-right:8px;" +
            "border:1px solid var(--border-color-primary,#ccc);border-radius:4px;padding:0 4px";
          line.appendChild(kbd);
          line.appendChild(document.createTextNode(what));
        }
        panel.appendChild(line);
      }
      panel.hidden = true;
      document.body.appendChild(panel);
    }
    panel.hidden = show === undefined ? !panel.hidden : !show;
  };
  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    const target = event.target;
    if (target && (target.tagName === "TEXTAREA" || target.tagName === "INPUT" || target.isContentEditable)) return;
    if (event.key === "?") {
      event.preventDefault();
      toggleHelp();
      return;
    }
    if (event.key === "Escape" && document.getElementById("key-help")) toggleHelp(false);
    if (event.key === "g") {  // the guidelines panel of the tab on screen (a hidden tab's has no offsetParent)
      const panel = [...document.querySelectorAll("details.guidelines-panel")].find((d) => d.offsetParent !== null);
      if (panel) {
        event.preventDefault();
        panel.open = !panel.open;
      }
      return;
    }
    const id = (event.shiftKey && shifted[event.code]) || keys[event.key];
    if (!id) return;
    const button = document.getElementById(id);
    if (button && button.offsetParent !== null && !button.disabled) {
      event.preventDefault();
      button.click();
    }
  });
})();
