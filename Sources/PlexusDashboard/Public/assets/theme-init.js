// Applies the saved theme before the first paint (a classic script, so it runs early).
try { const t = localStorage.getItem('plexus-theme'); if (t) document.documentElement.dataset.theme = t; } catch (e) { /* storage blocked */ }
