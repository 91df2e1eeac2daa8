// Copy buttons: put the exact value on the clipboard and say so.
document.addEventListener("click", async (event) => {
  const button = event.target.closest("button.copy");
  if (!button) return;
  try {
    await navigator.clipboard.writeText(button.dataset.copy);
    const label = button.textContent;
    button.textContent = "Copied";
    setTimeout(() => { button.textContent = label; }, 1500);
  } catch (error) {
    button.textContent = "Select and copy";
  }
});

// Connect form: say which domain the typed From address connects, as it is typed.
const email = document.getElementById("email");
const yields = document.getElementById("email-domain");
if (email && yields) {
  const initial = yields.textContent;
  email.addEventListener("input", () => {
    const at = email.value.lastIndexOf("@");
    const domain = at >= 0 ? email.value.slice(at + 1).trim().replace(/\.$/, "").toLowerCase() : "";
    yields.textContent = domain.includes(".") ? "Connects the domain " + domain + "." : initial;
  });
}

// Live updates: a setup page (or a shared one) asks every few seconds whether a check has
// finished; when one has, it fetches the page again, puts the fresh records table in place
// and says what changed. Without the script the page is the same, only reloaded by hand.
const source = document.querySelector(".live-source[data-state]");
if (source) {
  const names = { dkim: "DKIM", spf: "SPF", dmarc: "DMARC", return_path: "The Return-Path" };
  const words = { verified: "is now verified", not_verified: "is not verified any more", unknown: "could not be checked (DNS did not answer)" };
  const announce = document.getElementById("announce");
  const parse = (text) => Object.fromEntries(text.split(" ").filter(Boolean).map((pair) => pair.split(":")));
  let busy = false;
  const poll = async () => {
    const live = document.getElementById("live");
    if (busy || !live || document.hidden) return;
    busy = true;
    try {
      const answer = await fetch(source.dataset.state, { headers: { accept: "application/json" }, credentials: "same-origin" });
      if (!answer.ok) return;
      const state = await answer.json();
      if (state.stamp === live.dataset.stamp) return;
      const page = await fetch(window.location.pathname, { credentials: "same-origin" });
      if (!page.ok) return;
      const fresh = new DOMParser().parseFromString(await page.text(), "text/html").getElementById("live");
      if (!fresh) return;
      const before = parse(live.dataset.methods || "");
      const after = parse(fresh.dataset.methods || "");
      const open = [...live.querySelectorAll("details[open]")].map((details) => details.closest("[id]")?.id);
      live.replaceWith(fresh);
      open.forEach((id) => { const details = id && document.getElementById(id)?.querySelector("details"); if (details) details.open = true; });
      const changes = Object.keys(names).filter((method) => before[method] !== after[method] && words[after[method]])
        .map((method) => names[method] + " " + words[after[method]] + ".");
      if (announce) announce.textContent = changes.length ? changes.join(" ") : "Checked again just now: nothing changed.";
    } catch (error) {
      // Offline or the service restarting: try again at the next tick.
    } finally {
      busy = false;
    }
  };
  setInterval(poll, 3000);
  document.addEventListener("visibilitychange", poll);
}
