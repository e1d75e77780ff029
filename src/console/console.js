// hookline's console: the one script, progressive enhancement only (every page works
// without it). An element marked data-live="URL" has its content replaced from URL every 2 s
// while the page is visible: the deliveries list (its count and rows) updates while events
// flow.
"use strict";
// When the session has ended (the rows answer with a redirect to the sign-in), the page is
// reloaded, which shows the sign-in.
for (const target of document.querySelectorAll("[data-live]")) {
  const source = target.dataset.live;
  let busy = false;
  let last = null;
  const timer = setInterval(async () => {
    if (document.hidden || busy) return;
    busy = true;
    try {
      const res = await fetch(source, { credentials: "same-origin", redirect: "manual" });
      if (res.type === "opaqueredirect" || res.status === 401) {
        clearInterval(timer);
        location.reload();
      } else if (res.ok && res.headers.get("content-type")?.startsWith("text/html")) {
        // Unchanged, or the keyboard is inside it: left alone (focus and selection stay).
        const html = await res.text();
        if (html !== last && !target.contains(document.activeElement)) {
          target.innerHTML = html;
          last = html;
        }
      }
    } catch (_) {
      // Offline for a moment: the next tick tries again.
    } finally {
      busy = false;
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
