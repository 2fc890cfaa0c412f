// c_handle.cc - deleters for the C handles of c_handle.h.
#include "util/c_handle.h"

#include <glib-object.h>
#include <libxml/tree.h>

namespace spamgate {

void GObjectUnref::operator()(void* p) const {
  if (p != nullptr) g_object_unref(p);
}
void GFree::operator()(void* p) const { g_free(p); }
void GChecksumFree::operator()(GChecksum* p) const { g_checksum_free(p); }
void XmlDocFree::operator()(xmlDoc* p) const {
  if (p != nullptr) xmlFreeDoc(p);
}

}  // namespace spamgate
