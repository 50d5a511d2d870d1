// labkit mark: the question page from the keyboard. 1-9 toggle a rubric item of the current
// answer, j/k or the arrows move between answers, c opens the comment, Escape leaves it.
// Every change is saved at once; a conflict with another marker is shown and must be resolved.
"use strict";
(function () {
  const entries = Array.from(document.querySelectorAll("article.entry"));
  if (!entries.length) return;
  let current = 0;

  function xsrf() {
    const m = document.cookie.match(/(?:^|;\s*)_xsrf=([^;]*)/);
    return m ? decodeURIComponent(m[1]) : "";
  }
  function go(i) {
    current = Math.max(0, Math.min(entries.length - 1, i));
    entries[current].focus();
    entries[current].scrollIntoView({ block: "nearest" });
  }
  function state(entry) {
    return {
      revisions: JSON.parse(entry.dataset.revisions),
      items: Array.from(entry.querySelectorAll("button.item[aria-pressed=true]")).map(b => b.dataset.item),
      adjustment: parseFloat(entry.querySelector("input.adjustment").value || "0") || 0,
      comment: entry.querySelector("textarea.comment").value,
    };
  }
  function say(entry, text) { entry.querySelector(".status").textContent = text; }
  function show(entry, mark) {
    entry.querySelectorAll("button.item").forEach(b =>
      b.setAttribute("aria-pressed", String(mark.items.includes(b.dataset.item))));
    entry.querySelector("input.adjustment").value = mark.adjustment;
    entry.querySelector("textarea.comment").value = mark.comment;
  }
  function progress() {
    const p = document.getElementById("progress");
    if (!p) return;
    const total = parseInt(p.dataset.total, 10);
    const done = entries.filter(e => e.classList.contains("marked"))
      .reduce((n, e) => n + JSON.parse(e.dataset.keys).length, 0);
    p.textContent = `${done} of ${total} answers marked, ${total - done} left.`;
  }
  function conflict(entry, theirs) {
    const box = entry.querySelector(".conflict");
    const mark = Object.values(theirs)[0];
    box.hidden = false;
    box.textContent = "";
    const p = document.createElement("p");
    p.setAttribute("role", "alert");
    p.textContent = `Another marker changed this answer meanwhile: items ${mark.items.join(", ") || "none"}, ` +
      `score ${mark.score}, comment "${mark.comment}". Keep yours or take theirs.`;
    const mine = document.createElement("button");
    mine.type = "button"; mine.className = "keep-mine"; mine.textContent = "Keep mine";
    const take = document.createElement("button");
    take.type = "button"; take.className = "take-theirs"; take.textContent = "Take theirs";
    const revisions = JSON.parse(entry.dataset.revisions);
    for (const [k, m] of Object.entries(theirs)) revisions[k] = m.revision;
    mine.addEventListener("click", () => {
      entry.dataset.revisions = JSON.stringify(revisions); box.hidden = true; save(entry);
    });
    take.addEventListener("click", () => {
      entry.dataset.revisions = JSON.stringify(revisions); show(entry, mark); box.hidden = true;
      entry.classList.add("marked"); say(entry, `Score ${mark.score} (theirs, revision ${mark.revision}).`);
      progress(); entry.focus();
    });
    box.append(p, mine, take);
    mine.focus();
  }
  async function save(entry) {
    say(entry, "Saving…");
    let reply;
    try {
      reply = await fetch("/api/mark", {
        method: "POST", credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-XSRFToken": xsrf() },
        body: JSON.stringify(state(entry)),
      });
    } catch (e) { say(entry, "Not saved: the server cannot be reached."); return; }
    const data = await reply.json().catch(() => ({ error: `the server answered ${reply.status}` }));
    if (reply.status === 200) {
      const revisions = JSON.parse(entry.dataset.revisions);
      let mark = null;
      for (const [k, m] of Object.entries(data.marks)) { revisions[k] = m.revision; mark = m; }
      entry.dataset.revisions = JSON.stringify(revisions);
      entry.classList.add("marked");
      say(entry, `Score ${mark.score} of ${entry.dataset.max} (saved, revision ${mark.revision}).`);
      progress();
    } else if (reply.status === 409) {
      say(entry, "Not saved: another marker changed this answer.");
      conflict(entry, data.conflicts);
    } else {
      say(entry, `Not saved: ${data.error}.`);
    }
  }

  entries.forEach((entry, i) => {
    entry.addEventListener("focusin", () => { current = i; });
    entry.querySelectorAll("button.item").forEach(b => b.addEventListener("click", () => {
      b.setAttribute("aria-pressed", String(b.getAttribute("aria-pressed") !== "true"));
      save(entry);
    }));
    entry.querySelector("input.adjustment").addEventListener("change", () => save(entry));
    entry.querySelector("textarea.comment").addEventListener("change", () => save(entry));
  });

  document.addEventListener("keydown", ev => {
    if (ev.ctrlKey || ev.altKey || ev.metaKey) return;
    const entry = entries[current];
    const typing = ev.target.matches("input, textarea");
    if (typing) {
      if (ev.key === "Escape") { ev.preventDefault(); ev.target.blur(); entry.focus(); }
      return;
    }
    if (ev.key >= "1" && ev.key <= "9") {
      const b = entry.querySelector(`button.item[data-item="${ev.key}"]`);
      if (b) { ev.preventDefault(); b.click(); }
    } else if (ev.key === "j" || ev.key === "ArrowDown") {
      ev.preventDefault(); go(current + 1);
    } else if (ev.key === "k" || ev.key === "ArrowUp") {
      ev.preventDefault(); go(current - 1);
    } else if (ev.key === "c") {
      ev.preventDefault(); entry.querySelector("textarea.comment").focus();
    }
  });
  go(0);
})();
