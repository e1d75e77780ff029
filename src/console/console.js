// hookline's console: the one script, progressive enhancement only (every page works
// without it). A table body marked data-live="URL" is refreshed from URL every 2 s while the
// page is visible: the deliveries list updates while events flow.
"use strict";
for (const body of document.querySelectorAll("tbody[data-live]")) {
  const source = body.dataset.live;
  setInterval(async () => {
    if (document.hidden) return;
    try {
      const res = await fetch(source, { credentials: "same-origin" });
      if (res.ok && res.headers.get("content-type")?.startsWith("text/html")) {
        body.innerHTML = await res.text();
      }
    } catch (_) {
      // Offline for a moment: the next tick tries again.
    }
  }, 2000);
}
// Copy buttons (hidden until this script shows them): copy the named field's value.
for (const button of document.querySelectorAll("button[data-copy]")) {
  const field = document.querySelector(button.dataset.copy);
  if (!field || !navigator.clipboard) continue;
  button.hidden = false;
  button.addEventListener("click", async () => {
    await navigator.clipboard.writeText(field.value);
    button.textContent = "Copied";
    setTimeout(() => { button.textContent = "Copy"; }, 1500);
  });
}
