#ifndef BGCHECK_H
#define BGCHECK_H

#include "ultra64.h"

typedef struct CollisionHeader {
    s16 numVertices;
    s16 numPolygons;
} CollisionHeader;

#endif
