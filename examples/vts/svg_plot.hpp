#pragma once
// A small, dependency-free SVG line plot: enough for a precision-recall curve that opens in any
// browser.
#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

namespace vts::cli {

struct Series {
  std::string label;
  std::vector<double> x, y;
};

inline std::string svg_line_plot(const std::string& title, const std::string& x_label, const std::string& y_label,
                                 const std::vector<Series>& series) {
  const double W = 640, H = 480, left = 70, right = 20, top = 40, bottom = 60;
  const double pw = W - left - right, ph = H - top - bottom;
  auto X = [&](double v) { return left + std::clamp(v, 0.0, 1.0) * pw; };
  auto Y = [&](double v) { return top + (1.0 - std::clamp(v, 0.0, 1.0)) * ph; };
  char buf[256];
  std::string s;
  std::snprintf(buf, sizeof buf,
                "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%g\" height=\"%g\" viewBox=\"0 0 %g %g\" "
                "font-family=\"sans-serif\" font-size=\"12\">\n",
                W, H, W, H);
  s += buf;
  s += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  for (int i = 0; i <= 10; ++i) {
    const double v = i / 10.0;
    std::snprintf(buf, sizeof buf,
                  "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#e0e0e0\"/>"
                  "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#e0e0e0\"/>\n",
                  X(v), Y(0), X(v), Y(1), X(0), Y(v), X(1), Y(v));
    s += buf;
    std::snprintf(buf, sizeof buf,
                  "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%.1f</text>"
                  "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%.1f</text>\n",
                  X(v), Y(0) + 18, v, X(0) - 6, Y(v) + 4, v);
    s += buf;
  }
  std::snprintf(buf, sizeof buf, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"none\" stroke=\"black\"/>\n",
                left, top, pw, ph);
  s += buf;
  std::snprintf(buf, sizeof buf, "<text x=\"%.1f\" y=\"24\" text-anchor=\"middle\" font-size=\"15\">", W / 2);
  s += buf + title + "</text>\n";
  std::snprintf(buf, sizeof buf, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">", left + pw / 2, H - 15);
  s += buf + x_label + "</text>\n";
  std::snprintf(buf, sizeof buf, "<text x=\"18\" y=\"%.1f\" text-anchor=\"middle\" transform=\"rotate(-90 18 %.1f)\">",
                top + ph / 2, top + ph / 2);
  s += buf + y_label + "</text>\n";
  static const char* colors[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b"};
  for (size_t k = 0; k < series.size(); ++k) {
    s += std::string("<polyline fill=\"none\" stroke-width=\"2\" stroke=\"") + colors[k % 6] + "\" points=\"";
    for (size_t i = 0; i < series[k].x.size(); ++i) {
      std::snprintf(buf, sizeof buf, "%.2f,%.2f ", X(series[k].x[i]), Y(series[k].y[i]));
      s += buf;
    }
    s += "\"/>\n";
    std::snprintf(buf, sizeof buf, "<text x=\"%.1f\" y=\"%.1f\" fill=\"%s\">", X(0.55), Y(0.95) + 16.0 * k,
                  colors[k % 6]);
    s += buf + series[k].label + "</text>\n";
  }
  s += "</svg>\n";
  return s;
}

}  // namespace vts::cli
