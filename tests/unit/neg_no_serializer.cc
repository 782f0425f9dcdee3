// Must NOT compile: Serialize on a type that is neither cereal-serializable nor trivially
// copyable. The expected diagnostic is raympi's static_assert "the type has no serializer; add a
// serialize(Archive&) member (cereal) or make it trivially copyable."
#include <string>

#include "raympi/serialization.h"

namespace {

struct NoSerializer {
  std::string name;  // not trivially copyable, and no serialize()
};

}  // namespace

int main() {
  std::string bytes = raympi::internal::Serialize(NoSerializer{"x"});
  return static_cast<int>(bytes.size());
}
