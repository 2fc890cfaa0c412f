// c_handle.h - RAII owners for the C library handles spamgate uses.
//
// The handles of the libraries several modules use (PCRE2, GMime, libxml2,
// GLib) live in these std::unique_ptr aliases. A library only one module
// uses is wrapped the same way beside that module's code (c-ares in
// util/resolver.cc, hiredis and LMDB in bayes/, libclamav, libspf2,
// libopendkim and libopendmarc in checks/, Hyperscan in rules/prefilter.cc).
// Logic code never calls a C free function itself. The deleters accept nullptr.
#pragma once

#include <memory>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

typedef struct _GMimeObject GMimeObject;
typedef struct _GMimeStream GMimeStream;
typedef struct _GMimeParser GMimeParser;
typedef struct _GMimeMessage GMimeMessage;
typedef struct _GMimeParserOptions GMimeParserOptions;
typedef struct _InternetAddressList InternetAddressList;
typedef struct _xmlDoc xmlDoc;
typedef struct _GChecksum GChecksum;

namespace spamgate {

struct Pcre2CodeFree { void operator()(pcre2_code* p) const { pcre2_code_free(p); } };
struct Pcre2MatchDataFree { void operator()(pcre2_match_data* p) const { pcre2_match_data_free(p); } };
struct Pcre2MatchContextFree { void operator()(pcre2_match_context* p) const { pcre2_match_context_free(p); } };
struct Pcre2JitStackFree { void operator()(pcre2_jit_stack* p) const { pcre2_jit_stack_free(p); } };

using Pcre2Code = std::unique_ptr<pcre2_code, Pcre2CodeFree>;
using Pcre2MatchData = std::unique_ptr<pcre2_match_data, Pcre2MatchDataFree>;
using Pcre2MatchContext = std::unique_ptr<pcre2_match_context, Pcre2MatchContextFree>;
using Pcre2JitStack = std::unique_ptr<pcre2_jit_stack, Pcre2JitStackFree>;

// GObject-based handles (GMime) are released with g_object_unref.
struct GObjectUnref { void operator()(void* p) const; };
template <typename T>
using GObjectPtr = std::unique_ptr<T, GObjectUnref>;

// Strings allocated by glib (g_malloc) are released with g_free.
struct GFree { void operator()(void* p) const; };
using GString_ = std::unique_ptr<char, GFree>;

struct GChecksumFree { void operator()(GChecksum* p) const; };
using GChecksumPtr = std::unique_ptr<GChecksum, GChecksumFree>;

struct XmlDocFree { void operator()(xmlDoc* p) const; };
using XmlDoc = std::unique_ptr<xmlDoc, XmlDocFree>;

}  // namespace spamgate
