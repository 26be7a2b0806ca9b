/* data_model.h -- folds data-loading records (the main process's log and
 * every worker spool in the session's spool directory) into the model's
 * data section.  Called by cp_model_build. */
#ifndef CP_DATA_MODEL_H
#define CP_DATA_MODEL_H

#include "core/session.h"
#include "model/model.h"

/* Fills m->data.  Returns 0, or -1 on OOM (m->data is then empty). */
int cp_data_build(cp_model *m, cp_session *s);

#endif
