#ifndef MESSAGE_H
#define MESSAGE_H

#include "ultra64.h"
#include "text/message_data.h"

typedef struct MessageTableEntry {
    u16 textId;
    const char* segment;
} MessageTableEntry;

#endif
