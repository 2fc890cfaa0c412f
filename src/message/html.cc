// html.cc - HTML to text with libxml2 (see html.h).
//
// The tree is walked iteratively (no recursion), so a deeply nested hostile
// document cannot exhaust the stack.
#include "message/html.h"

#include <libxml/HTMLparser.h>
#include <libxml/parser.h>

#include <cstring>
#include <mutex>

#include "util/c_handle.h"

namespace spamgate {
namespace {

bool name_is(const xmlNode* n, const char* name) {
  return n->name != nullptr && xmlStrcasecmp(n->name, reinterpret_cast<const xmlChar*>(name)) == 0;
}

bool is_block(const xmlNode* n) {
  static const char* const kBlocks[] = {"p",  "br", "div", "tr", "li", "h1", "h2", "h3", "h4",
                                        "h5", "h6", "table", "ul", "ol", "blockquote", "hr",
                                        "title", "td", "th", "pre", "form"};
  for (const char* b : kBlocks) {
    if (name_is(n, b)) return true;
  }
  return false;
}

void take_link(const xmlNode* n, UriCollector& uris) {
  const char* attr = nullptr;
  if (name_is(n, "a") || name_is(n, "area") || name_is(n, "link") || name_is(n, "base")) {
    attr = "href";
  } else if (name_is(n, "img") || name_is(n, "iframe") || name_is(n, "frame") ||
             name_is(n, "embed") || name_is(n, "script")) {
    attr = "src";
  } else if (name_is(n, "form")) {
    attr = "action";
  }
  if (attr == nullptr) return;
  for (const xmlAttr* a = n->properties; a != nullptr; a = a->next) {
    if (a->name == nullptr || xmlStrcasecmp(a->name, reinterpret_cast<const xmlChar*>(attr)) != 0)
      continue;
    if (a->children != nullptr && a->children->content != nullptr) {
      const char* v = reinterpret_cast<const char*>(a->children->content);
      uris.add(std::string_view(v, std::strlen(v)), true);
    }
  }
}

}  // namespace

void init_html() {
  static std::once_flag once;
  std::call_once(once, [] { xmlInitParser(); });
}

bool html_to_text(std::string_view html, std::string& out, std::size_t max_bytes,
                  UriCollector& uris) {
  if (html.empty()) return true;
  if (html.size() > static_cast<std::size_t>(INT32_MAX)) html = html.substr(0, INT32_MAX);
  XmlDoc doc(htmlReadMemory(html.data(), static_cast<int>(html.size()), nullptr, "UTF-8",
                            HTML_PARSE_RECOVER | HTML_PARSE_NOERROR | HTML_PARSE_NOWARNING |
                                HTML_PARSE_NONET | HTML_PARSE_COMPACT));
  if (!doc) return true;
  const std::size_t limit = out.size() + max_bytes;
  bool cut = false;
  const xmlNode* n = xmlDocGetRootElement(doc.get());
  // Iterative pre-order walk: descend into children, else next sibling, else climb.
  while (n != nullptr && !cut) {
    bool skip_children = false;
    if (n->type == XML_ELEMENT_NODE) {
      take_link(n, uris);
      if (name_is(n, "script") || name_is(n, "style")) skip_children = true;
      if (is_block(n) && !out.empty() && out.back() != '\n') out.push_back('\n');
    } else if (n->type == XML_TEXT_NODE || n->type == XML_CDATA_SECTION_NODE) {
      if (n->content != nullptr) {
        const char* t = reinterpret_cast<const char*>(n->content);
        std::size_t len = std::strlen(t);
        if (out.size() + len > limit) {
          len = limit - out.size();
          cut = true;
        }
        out.append(t, len);
      }
    }
    if (!skip_children && n->children != nullptr && n->type == XML_ELEMENT_NODE) {
      n = n->children;
      continue;
    }
    while (n != nullptr && n->next == nullptr) {
      n = n->parent;
      if (n != nullptr && n->type == XML_ELEMENT_NODE && is_block(n) && !out.empty() &&
          out.back() != '\n')
        out.push_back('\n');
      if (n != nullptr && n->type != XML_ELEMENT_NODE) n = nullptr;  // reached the document
    }
    if (n != nullptr) n = n->next;
  }
  if (!out.empty() && out.back() != '\n') out.push_back('\n');
  return !cut;
}

}  // namespace spamgate
