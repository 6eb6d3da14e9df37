// MathJax settings, read by the vendored docs/javascripts/mathjax/tex-svg.js that follows.
// Markdown pages mark math with pymdownx.arithmatex; executed notebooks keep Jupyter's $...$
// inside the paragraphs and list items of their rendered Markdown cells, so the whole page is
// searched (code and pre blocks are skipped by MathJax's defaults). Ignoring every class but
// a few, as is usual with arithmatex alone, would skip the notebooks' <p> and <li> elements.
window.MathJax = {
  tex: {
    inlineMath: [["\\(", "\\)"], ["$", "$"]],
    displayMath: [["\\[", "\\]"], ["$$", "$$"]],
    processEscapes: true,
    processEnvironments: true,
  },
  options: {
    ignoreHtmlClass: "tex2jax_ignore|mathjax_ignore",
    processHtmlClass: "arithmatex|tex2jax_process|mathjax_process",
  },
  svg: { fontCache: "global" },
};
