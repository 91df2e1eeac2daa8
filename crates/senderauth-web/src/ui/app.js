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
