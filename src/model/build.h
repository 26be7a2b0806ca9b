/* build.h -- building a cp_model from a session's folded thread trees.
 * Called by cp_session_snapshot with the session mutex held and every
 * buffer folded; never by writers. */
#ifndef CP_MODEL_BUILD_H
#define CP_MODEL_BUILD_H

#include "core/session.h"
#include "model/model.h"

/* Returns a new model (free with cp_model_free) or NULL on OOM. */
cp_model *cp_model_build(cp_session *s);

#endif
