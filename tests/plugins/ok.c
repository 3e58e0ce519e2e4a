#include <schedulerd/job.h>
