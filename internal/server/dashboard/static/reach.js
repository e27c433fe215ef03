// reach dashboard: sortable tables and "select all". The pages work
// without it.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  for (const th of document.querySelectorAll("table.sortable th:not(.nosort)")) {
    th.addEventListener("click", () => sortBy(th));
  }
  for (const box of document.querySelectorAll("input.all")) {
    box.addEventListener("change", () => {
      for (const b of box.closest("table").querySelectorAll("tbody input[type=checkbox]")) b.checked = box.checked;
    });
  }
});

function sortBy(th) {
  const table = th.closest("table"), body = table.tBodies[0];
  const col = Array.prototype.indexOf.call(th.parentNode.children, th);
  const desc = !th.classList.contains("desc");
  for (const h of th.parentNode.children) h.classList.remove("asc", "desc");
  th.classList.add(desc ? "desc" : "asc");
  const key = (tr) => {
    const td = tr.children[col];
    if (!td) return "";
    const v = td.dataset.sort !== undefined ? td.dataset.sort : td.textContent.trim();
    const n = Number(v);
    return v !== "" && !isNaN(n) ? n : v.toLowerCase();
  };
  const rows = Array.from(body.rows).filter((tr) => tr.children.length > 1);
  rows.sort((a, b) => {
    const x = key(a), y = key(b);
    const c = typeof x === "number" && typeof y === "number" ? x - y : String(x).localeCompare(String(y));
    return desc ? -c : c;
  });
  for (const tr of rows) body.appendChild(tr);
}
