// mmfs analyst pages: play a segment's audio clip in the one player of the media page.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  const player = document.getElementById("player");
  if (!player) return;
  for (const button of document.querySelectorAll("button.play")) {
    button.addEventListener("click", () => {
      player.src = button.dataset.src;
      document.getElementById("playing").textContent = button.dataset.label;
      player.play().catch(() => {});
    });
  }
});
