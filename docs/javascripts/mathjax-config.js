// MathJax settings, read by the vendored docs/javascripts/mathjax/tex-svg.js that follows.
// Markdown pages mark math with pymdownx.arithmatex; executed notebooks keep Jupyter's $...$
// inside their rendered Markdown cells, so both are processed.
window.MathJax = {
  tex: {
    inlineMath: [["\\(", "\\)"], ["$", "$"]],
    displayMath: [["\\[", "\\]"], ["$$", "$$"]],
    processEscapes: true,
    processEnvironments: true,
  },
  options: {
    ignoreHtmlClass: ".*|",
    processHtmlClass: "arithmatex|jp-RenderedMarkdown|jp-MarkdownOutput",
  },
  svg: { fontCache: "global" },
};
