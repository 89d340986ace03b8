// Keyboard shortcuts for the labeling tabs. A key clicks the button with that elem_id when the
// button is visible and the focus is not in a text field (typing a reason must not label a pair).
(() => {
  const keys = {
    "1": "label-left-better", "2": "label-right-better", "3": "label-tie", "4": "label-both-bad",
    "s": "label-skip", "z": "label-undo",
    "+": "feedback-up", "=": "feedback-up", "-": "feedback-down", "k": "feedback-skip", "u": "feedback-undo",
  };
  // A verdict (or skip) within this many ms of the previous one is a double press, not a decision: the next
  // item can be on screen a few ms after a label (it comes from the prefetched buffer), far too soon to have
  // been read, so the second press would judge an item nobody saw. Undo is left out: it judges nothing.
  const REPEAT_MS = 300;
  const verdicts = new Set(["label-left-better", "label-right-better", "label-tie", "label-both-bad", "label-skip",
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
  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    const target = event.target;
    if (target && (target.tagName === "TEXTAREA" || target.tagName === "INPUT" || target.isContentEditable)) return;
    const id = keys[event.key];
    if (!id) return;
    const button = document.getElementById(id);
    if (button && button.offsetParent !== null && !button.disabled) {
      event.preventDefault();
      button.click();
    }
  });
})();
