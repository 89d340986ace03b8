// Keyboard shortcuts for the labeling tabs. A key clicks the button with that elem_id when the
// button is visible and the focus is not in a text field (typing a reason must not label a pair).
(() => {
  const keys = {
    "1": "label-left-better", "2": "label-right-better", "3": "label-tie", "4": "label-both-bad",
    "s": "label-skip", "z": "label-undo",
    "+": "feedback-up", "=": "feedback-up", "-": "feedback-down", "k": "feedback-skip", "u": "feedback-undo",
  };
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
